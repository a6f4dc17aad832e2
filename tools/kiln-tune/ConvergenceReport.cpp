// Convergence plots and the page that shows them, from the trials alone.
#include "ConvergenceReport.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace kiln::tune {

namespace {

constexpr const char *kSearches[] = {"ga", "sa", "random"};
constexpr const char *kColors[] = {"#d62728", "#1f77b4", "#7f7f7f"};
constexpr const char *kNames[] = {"genetic algorithm", "simulated annealing", "random search"};
/// Random search's final speed-up from which a kernel counts in the GA-vs-random figure.
constexpr double kTellingSpeedup = 1.02;

/// One search of one kernel: each trial's time in order (infinity: failed).
struct Curve {
  std::string session;
  std::vector<double> times;

  /// Best speed-up over the first trial (the default schedule, which every search
  /// measures first) after each trial.
  std::vector<double> speedups() const {
    std::vector<double> result;
    double best = std::numeric_limits<double>::infinity();
    for (double t : times) {
      best = std::min(best, t);
      result.push_back(std::isfinite(best) && std::isfinite(times.front()) ? times.front() / best
                                                                            : 1.0);
    }
    return result;
  }
};

struct KernelCurves {
  std::string label, model;
  std::map<std::string, Curve> bySearch; // the latest session of each search
};

/// How one search fared against another's final best on the kernels where that best was
/// a speed-up worth the name (kTellingSpeedup): per such kernel, the trials the first
/// needed to reach it as a fraction of the other's trials (infinity: not reached).
struct Chase {
  std::vector<double> ratios;

  /// Adds a kernel's curves and returns its table cell: the trials `chaser` needed to
  /// reach `target`'s final best, or "not reached".
  std::string add(const std::vector<double> &chaser, const std::vector<double> &target) {
    auto reached = std::find_if(chaser.begin(), chaser.end(),
                                [&](double s) { return s >= target.back(); });
    // Kernels where the target search found nothing to speak of say nothing about the
    // searches: any of them "reaches" the default at once.
    bool telling = target.back() >= kTellingSpeedup, found = reached != chaser.end();
    size_t trials = static_cast<size_t>(reached - chaser.begin()) + 1;
    if (telling)
      ratios.push_back(found ? static_cast<double>(trials) / static_cast<double>(target.size())
                             : std::numeric_limits<double>::infinity());
    return found ? std::to_string(trials) : "not reached";
  }

  /// "On the median kernel ..." for `chaser` reaching `target`'s final best.
  std::string summary(const char *chaser, const char *target) {
    char line[320];
    if (ratios.empty()) {
      snprintf(line, sizeof line,
               "<p>%s found no speed-up of %.0f%% or more on any kernel: nothing to compare "
               "%s with.</p>\n",
               target, 100 * (kTellingSpeedup - 1), chaser);
      line[3] = static_cast<char>(toupper(line[3]));
      return line;
    }
    std::sort(ratios.begin(), ratios.end());
    double median = ratios[ratios.size() / 2];
    const char *kernels = ratios.size() == 1 ? "kernel" : "kernels";
    if (std::isfinite(median))
      snprintf(line, sizeof line,
               "<p>On the median kernel %s reached %s's final best in %.0f%% of %s's trials "
               "(over the %zu %s where %s found a speed-up of at least %.0f%%).</p>\n",
               chaser, target, 100 * median, target, ratios.size(), kernels, target,
               100 * (kTellingSpeedup - 1));
    else
      snprintf(line, sizeof line,
               "<p>On the median kernel %s did not reach %s's final best (over the %zu "
               "%s where %s found a speed-up of at least %.0f%%).</p>\n",
               chaser, target, ratios.size(), kernels, target, 100 * (kTellingSpeedup - 1));
    return line;
  }
};

std::string escape(const std::string &text) {
  std::string out;
  for (char c : text)
    switch (c) {
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '&': out += "&amp;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  return out;
}

/// "results: tensor<64x512xf32>" from a tuning key, to tell kernels apart on the page.
std::string labelOf(const std::string &key) {
  size_t at = key.find("results:");
  std::string results = at == std::string::npos ? "" : key.substr(at, key.find('\n', at) - at);
  size_t ops = 0;
  for (size_t p = key.find("\"linalg."); p != std::string::npos; p = key.find("\"linalg.", p + 1))
    ++ops;
  return results + " (" + std::to_string(ops) + " linalg ops)";
}

std::string svg(const KernelCurves &kernel) {
  const double width = 640, height = 360, left = 60, right = 20, top = 20, bottom = 50;
  size_t trials = 1;
  double topSpeedup = 1.1;
  for (const auto &[search, curve] : kernel.bySearch) {
    trials = std::max(trials, curve.times.size());
    for (double s : curve.speedups())
      topSpeedup = std::max(topSpeedup, s * 1.05);
  }
  auto x = [&](double trial) { return left + (width - left - right) * trial / std::max<size_t>(1, trials - 1); };
  auto y = [&](double speedup) {
    return top + (height - top - bottom) * (1 - (speedup - 1) / (topSpeedup - 1));
  };
  std::ostringstream os;
  os.precision(4);
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
     << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  // Axes, ticks and labels.
  os << "<line x1=\"" << left << "\" y1=\"" << height - bottom << "\" x2=\"" << width - right
     << "\" y2=\"" << height - bottom << "\" stroke=\"black\"/>\n"
     << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\""
     << height - bottom << "\" stroke=\"black\"/>\n";
  for (int i = 0; i <= 4; ++i) {
    double s = 1 + (topSpeedup - 1) * i / 4;
    os << "<text x=\"" << left - 6 << "\" y=\"" << y(s) + 4 << "\" text-anchor=\"end\">" << s
       << "x</text>\n<line x1=\"" << left << "\" y1=\"" << y(s) << "\" x2=\"" << width - right
       << "\" y2=\"" << y(s) << "\" stroke=\"#eee\"/>\n";
    size_t t = (trials - 1) * i / 4;
    os << "<text x=\"" << x(t) << "\" y=\"" << height - bottom + 16
       << "\" text-anchor=\"middle\">" << t + 1 << "</text>\n";
  }
  os << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 10
     << "\" text-anchor=\"middle\">trials</text>\n"
     << "<text x=\"14\" y=\"" << (top + height - bottom) / 2 << "\" transform=\"rotate(-90 14 "
     << (top + height - bottom) / 2
     << ")\" text-anchor=\"middle\">best speed-up over the default</text>\n";
  int legend = 0;
  for (size_t i = 0; i < 3; ++i) {
    auto found = kernel.bySearch.find(kSearches[i]);
    if (found == kernel.bySearch.end())
      continue;
    std::vector<double> s = found->second.speedups();
    os << "<polyline fill=\"none\" stroke=\"" << kColors[i] << "\" stroke-width=\"2\" points=\"";
    for (size_t t = 0; t < s.size(); ++t)
      os << x(t) << "," << y(s[t]) << " ";
    os << "\"/>\n<text x=\"" << left + 10 << "\" y=\"" << top + 14 + 16 * legend++
       << "\" fill=\"" << kColors[i] << "\">" << kNames[i] << " (" << s.size() << " trials, "
       << s.back() << "x)</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

} // namespace

llvm::Expected<std::string> writeConvergenceReport(const std::vector<tuning::Trial> &trials,
                                                   const std::string &directory) {
  // Kernels by key (target and compiler version included), in the order first tuned.
  std::vector<std::string> order;
  std::map<std::string, KernelCurves> kernels;
  for (const tuning::Trial &t : trials) {
    if (std::find(std::begin(kSearches), std::end(kSearches), t.search) == std::end(kSearches))
      continue;
    std::string id = t.key.kernel + "\n" + t.key.target + "\n" + t.key.compilerVersion;
    auto [it, isNew] = kernels.try_emplace(id);
    if (isNew) {
      order.push_back(id);
      it->second.label = labelOf(t.key.kernel);
      it->second.model = t.model;
    }
    Curve &curve = it->second.bySearch[t.search];
    if (curve.session != t.session) // a later session of this search replaces the earlier
      curve = {t.session, {}};
    curve.times.push_back(t.timeNs ? *t.timeNs : std::numeric_limits<double>::infinity());
  }
  if (order.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the tuning database holds no search trials to report");
  if (std::error_code ec = llvm::sys::fs::create_directories(directory))
    return llvm::createStringError(ec, "cannot create '" + directory + "': " + ec.message());
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>kiln-tune "
          "convergence</title>\n<style>body{font-family:sans-serif;max-width:960px;margin:2em "
          "auto}td,th{padding:2px 10px;text-align:right}</style></head><body>\n"
          "<h1>kiln-tune: convergence of the schedule searches</h1>\n"
          "<p>Each plot: the best speed-up over the default schedule after each trial (the "
          "first trial of every search is the default), for the latest session of each "
          "search. The table: how many trials the genetic algorithm needed to reach random "
          "search's final best, and random search the genetic algorithm's.</p>\n<table><tr>"
          "<th>kernel</th><th>model</th><th>GA</th><th>SA</th><th>random</th>"
          "<th>GA trials to reach random's best</th><th>random's trials</th>"
          "<th>random trials to reach GA's best</th><th>GA's trials</th></tr>\n";
  std::ostringstream plots;
  Chase gaChasing, randomChasing;
  for (size_t i = 0; i < order.size(); ++i) {
    const KernelCurves &kernel = kernels[order[i]];
    std::string file = "kernel-" + std::to_string(i) + ".svg";
    llvm::SmallString<256> path(directory);
    llvm::sys::path::append(path, file);
    std::ofstream out(std::string(path), std::ios::binary);
    out << svg(kernel);
    if (!out)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "cannot write '" + std::string(path) + "'");
    page << "<tr><td><a href=\"#k" << i << "\">" << i << "</a></td><td>"
         << escape(kernel.model) << "</td>";
    for (const char *search : kSearches) {
      auto found = kernel.bySearch.find(search);
      char cell[32] = "-";
      if (found != kernel.bySearch.end())
        snprintf(cell, sizeof cell, "%.2fx", found->second.speedups().back());
      page << "<td>" << cell << "</td>";
    }
    auto ga = kernel.bySearch.find("ga"), random = kernel.bySearch.find("random");
    if (ga != kernel.bySearch.end() && random != kernel.bySearch.end()) {
      std::vector<double> g = ga->second.speedups(), r = random->second.speedups();
      page << "<td>" << gaChasing.add(g, r) << "</td><td>" << r.size() << "</td><td>"
           << randomChasing.add(r, g) << "</td><td>" << g.size() << "</td>";
    } else {
      page << "<td>-</td><td>-</td><td>-</td><td>-</td>";
    }
    page << "</tr>\n";
    plots << "<h2 id=\"k" << i << "\">kernel " << i << ": " << escape(kernel.label) << "</h2>\n"
          << "<p>" << escape(kernel.model) << "</p>\n<img src=\"" << file << "\">\n";
  }
  page << "</table>\n"
       << gaChasing.summary("the genetic algorithm", "random search")
       << randomChasing.summary("random search", "the genetic algorithm");
  page << plots.str() << "</body></html>\n";
  llvm::SmallString<256> index(directory);
  llvm::sys::path::append(index, "index.html");
  std::ofstream out(std::string(index), std::ios::binary);
  out << page.str();
  if (!out)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "cannot write '" + std::string(index) + "'");
  return std::string(index);
}

} // namespace kiln::tune
