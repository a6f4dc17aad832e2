// Searches over a kernel's schedule space, in ask/tell form: the tuner asks for the
// next schedule to measure and tells the search its cost. A genetic algorithm, and
// simulated annealing and random search as the baselines it is measured against.
#ifndef KILN_COMPILER_TUNING_SCHEDULESEARCH_H
#define KILN_COMPILER_TUNING_SCHEDULESEARCH_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace kiln::tuning {

/// A knob the search varies and the values it may take (a slice of
/// KernelSchedule::space(): the knobs that matter for the kernel).
struct SearchKnob {
  std::string name;
  std::vector<int64_t> values;
};

/// A point of the space: for each knob, the index of its value.
using Genome = std::vector<unsigned>;

struct SearchOptions {
  /// Genetic algorithm: individuals per generation.
  unsigned population = 24;
  /// Genetic algorithm: stop after this many generations (0: only when converged).
  unsigned maxGenerations = 0;
  /// Genetic algorithm: converged when the best cost improved by less than
  /// `minImprovement` (relative) over this many generations.
  unsigned patience = 3;
  double minImprovement = 0.01;
  /// Genetic algorithm: the fraction of generation 0 that are neighbours of the initial
  /// schedule (a knob or two changed) rather than uniform random points. The initial
  /// schedule is the backend's heuristic default, usually near the best: on real
  /// kernels the good points are around it, and a budget of tens of trials is spent
  /// better there than on 24 uniform points. 0: all random.
  double localStart = 0.5;
  /// Genetic algorithm: points of generation 0 measured right after the initial one,
  /// before the neighbours and random points (kiln-tune: the winners of the kernels
  /// it tuned before this one).
  std::vector<Genome> seeds;
  uint64_t seed = 1;
};

class ScheduleSearch {
public:
  ScheduleSearch(std::vector<SearchKnob> knobs, Genome initial, uint64_t seed);
  virtual ~ScheduleSearch();

  /// The next point to measure; none when the search has finished (converged, out of
  /// generations, or every point measured). The first point is always the initial
  /// schedule, so no search ends worse than it. Points are measured one at a time: tell
  /// a point's cost before asking for the next.
  std::optional<Genome> next();
  /// The cost of `point` (returned by next()); +infinity for a failed candidate.
  void tell(const Genome &point, double cost);

  /// The cheapest point measured so far and its cost.
  std::optional<std::pair<Genome, double>> best() const;
  /// The generation being measured (0 for searches without generations).
  virtual unsigned generation() const { return 0; }
  unsigned measured() const { return static_cast<unsigned>(costs.size()); }
  const std::vector<SearchKnob> &knobs() const { return space; }
  /// "name=value ..." of `point`.
  std::string describe(const Genome &point) const;

protected:
  virtual std::optional<Genome> propose() = 0;
  virtual void observe(const Genome &point, double cost) = 0;

  Genome randomPoint();
  /// `point` with each knob changed with probability `rate` (at least one changed).
  Genome mutate(Genome point, double rate);
  /// A point near `from` (or anywhere) that was neither measured nor proposed; none
  /// when `tries` attempts found only known ones.
  std::optional<Genome> unmeasured(std::optional<Genome> from, double rate, unsigned tries);
  bool known(const Genome &point) const { return costs.count(point) || proposed.count(point); }
  double uniform() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }
  unsigned below(size_t n) { return static_cast<unsigned>(rng() % n); }
  /// Points in the space (saturating).
  uint64_t size() const;

  std::vector<SearchKnob> space;
  Genome initial;
  std::mt19937_64 rng;
  std::map<Genome, double> costs;
  std::map<Genome, bool> proposed; // handed out, not yet told
};

/// "ga", "sa" or "random"; null for another name.
std::unique_ptr<ScheduleSearch> createSearch(llvm::StringRef kind, std::vector<SearchKnob> knobs,
                                             Genome initial, const SearchOptions &options);

} // namespace kiln::tuning

#endif // KILN_COMPILER_TUNING_SCHEDULESEARCH_H
