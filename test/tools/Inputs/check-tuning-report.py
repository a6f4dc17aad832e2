"""Reads the page and plots kiln-tune --report wrote: the table's kernel rows, that
every plot the page shows exists and is well-formed SVG, and which searches each plot
draws (by the legend's text)."""
import os
import re
import sys
import xml.dom.minidom

directory = sys.argv[1]
page = open(os.path.join(directory, "index.html"), encoding="utf-8").read()
rows = re.findall(r'<tr><td><a href="#k(\d+)">', page)
images = re.findall(r'<img src="([^"]+)">', page)
print("kernel rows:", len(rows))
print("plots:", len(images))
searches = set()
for image in images:
    svg = xml.dom.minidom.parse(os.path.join(directory, image))
    lines = svg.getElementsByTagName("polyline")
    for text in svg.getElementsByTagName("text"):
        label = "".join(n.data for n in text.childNodes if n.nodeType == n.TEXT_NODE)
        if "trials, " in label:
            searches.add(label.split(" (")[0])
    assert len(lines) >= 1, image
print("searches drawn:", ", ".join(sorted(searches)))
# One summary each way: the GA reaching random search's final best, and random search
# the GA's.
summaries = re.findall(r"<p>(On the median kernel (?:the genetic algorithm|random search)"
                       r"|(?:Random search|The genetic algorithm) found no speed-up)", page)
print("summaries:", len(summaries))
