"""Summarizes a kiln tuning database with Python's own sqlite3 module (an independent
reader of the file kiln writes): the searches and statuses its trials hold, and how many
kernels have a best schedule in its best_schedules view."""
import sqlite3
import sys

db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
searches = sorted(r[0] for r in db.execute("SELECT DISTINCT search FROM trials"))
statuses = sorted(r[0] for r in db.execute("SELECT DISTINCT status FROM trials"))
trials = db.execute("SELECT count(*) FROM trials").fetchone()[0]
best = db.execute("SELECT count(*) FROM best_schedules").fetchone()[0]
print("trials:", trials)
print("searches:", " ".join(searches))
print("statuses:", " ".join(statuses))
print("kernels with a best schedule:", best)
