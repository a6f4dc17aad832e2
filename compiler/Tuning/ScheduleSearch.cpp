// The genetic algorithm, simulated annealing and random search over schedule spaces.
#include "compiler/Tuning/ScheduleSearch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln::tuning {

ScheduleSearch::ScheduleSearch(std::vector<SearchKnob> knobs, Genome initial, uint64_t seed)
    : space(std::move(knobs)), initial(std::move(initial)), rng(seed) {}

ScheduleSearch::~ScheduleSearch() = default;

std::optional<Genome> ScheduleSearch::next() {
  std::optional<Genome> point;
  if (costs.empty() && proposed.empty())
    point = initial;
  else if (costs.size() + proposed.size() < size())
    point = propose();
  if (point)
    proposed[*point] = true;
  return point;
}

void ScheduleSearch::tell(const Genome &point, double cost) {
  proposed.erase(point);
  costs[point] = cost;
  observe(point, cost);
}

std::optional<std::pair<Genome, double>> ScheduleSearch::best() const {
  std::optional<std::pair<Genome, double>> result;
  for (const auto &[point, cost] : costs)
    if (std::isfinite(cost) && (!result || cost < result->second))
      result = {point, cost};
  return result;
}

std::string ScheduleSearch::describe(const Genome &point) const {
  std::string text;
  for (size_t i = 0; i < space.size(); ++i)
    text += (i ? " " : "") + space[i].name + "=" + std::to_string(space[i].values[point[i]]);
  return text;
}

uint64_t ScheduleSearch::size() const {
  uint64_t n = 1;
  for (const SearchKnob &knob : space)
    n = n > std::numeric_limits<uint64_t>::max() / knob.values.size()
            ? std::numeric_limits<uint64_t>::max()
            : n * knob.values.size();
  return n;
}

Genome ScheduleSearch::randomPoint() {
  Genome point(space.size());
  for (size_t i = 0; i < space.size(); ++i)
    point[i] = below(space[i].values.size());
  return point;
}

Genome ScheduleSearch::mutate(Genome point, double rate) {
  std::vector<size_t> variable;
  for (size_t i = 0; i < space.size(); ++i)
    if (space[i].values.size() > 1)
      variable.push_back(i);
  if (variable.empty())
    return point;
  bool changed = false;
  auto change = [&](size_t i) {
    // Another value of the knob, each equally likely.
    unsigned other = below(space[i].values.size() - 1);
    point[i] = other >= point[i] ? other + 1 : other;
    changed = true;
  };
  for (size_t i : variable)
    if (uniform() < rate)
      change(i);
  if (!changed)
    change(variable[below(variable.size())]);
  return point;
}

std::optional<Genome> ScheduleSearch::unmeasured(std::optional<Genome> from, double rate,
                                                 unsigned tries) {
  for (unsigned i = 0; i < tries; ++i) {
    Genome point = from ? mutate(*from, rate) : randomPoint();
    if (!known(point))
      return point;
  }
  return std::nullopt;
}

namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// Uniform random points, none twice.
class RandomSearch : public ScheduleSearch {
public:
  using ScheduleSearch::ScheduleSearch;

protected:
  std::optional<Genome> propose() override {
    if (std::optional<Genome> point = unmeasured(std::nullopt, 0, 1000))
      return point;
    return firstUnknown();
  }
  void observe(const Genome &, double) override {}

  /// Small spaces run out of random hits before they run out of points.
  std::optional<Genome> firstUnknown() {
    Genome point(space.size(), 0);
    for (;;) {
      if (!known(point))
        return point;
      size_t i = 0;
      while (i < space.size() && ++point[i] == space[i].values.size())
        point[i++] = 0;
      if (i == space.size())
        return std::nullopt;
    }
  }
};

/// Simulated annealing from the initial point: a neighbour changes one or two knobs; a
/// worse one is accepted with probability exp(-relative loss / temperature), so early
/// steps can leave a local minimum and late ones cannot.
class AnnealingSearch : public RandomSearch {
public:
  using RandomSearch::RandomSearch;

protected:
  std::optional<Genome> propose() override {
    if (std::optional<Genome> point = unmeasured(current, 0.15, 200))
      return point;
    return RandomSearch::propose();
  }
  void observe(const Genome &point, double cost) override {
    if (!current) {
      current = point;
      currentCost = cost;
      return;
    }
    if (std::isfinite(cost)) {
      double loss = std::isfinite(currentCost) ? (cost - currentCost) / currentCost : -1;
      if (loss < 0 || uniform() < std::exp(-loss / temperature)) {
        current = point;
        currentCost = cost;
      }
    }
    // A 5% loss is accepted with probability 1/e at the start; after 60 steps
    // (temperature 0.05 * 0.95^60 ~ 0.002) almost never.
    temperature *= 0.95;
  }

private:
  std::optional<Genome> current;
  double currentCost = kInfinity;
  double temperature = 0.05;
};

/// A generational genetic algorithm: the first generation is the initial point and
/// random ones; each next one keeps the best of the last (elitism) and breeds the rest
/// from parents chosen by tournament, with uniform crossover and mutation. It stops
/// when the best has not improved by `minImprovement` in `patience` generations.
class GeneticSearch : public ScheduleSearch {
public:
  GeneticSearch(std::vector<SearchKnob> knobs, Genome initial, const SearchOptions &options)
      : ScheduleSearch(std::move(knobs), std::move(initial), options.seed), options(options) {}

  unsigned generation() const override { return generationIndex; }

protected:
  std::optional<Genome> propose() override {
    if (pending.empty() && outstanding == 0) {
      if (finished || !breed())
        return std::nullopt;
    }
    if (pending.empty())
      return std::nullopt; // the rest of this generation is being measured
    Genome point = pending.back();
    pending.pop_back();
    ++outstanding;
    return point;
  }

  void observe(const Genome &point, double cost) override {
    if (outstanding)
      --outstanding;
    offspring.push_back({point, cost});
  }

private:
  using Individual = std::pair<Genome, double>;

  /// Closes the generation just measured and fills `pending` with the next; false when
  /// the search is over.
  bool breed() {
    if (!started) {
      // Only the initial point has been handed out (by next()): the rest of generation 0.
      started = true;
      return fillRandom();
    }
    std::sort(offspring.begin(), offspring.end(),
              [](const Individual &a, const Individual &b) { return a.second < b.second; });
    unsigned elites = std::max(1u, options.population / 8);
    std::vector<Individual> next(population.begin(),
                                 population.begin() + std::min<size_t>(elites, population.size()));
    next.insert(next.end(), offspring.begin(), offspring.end());
    std::sort(next.begin(), next.end(),
                     [](const Individual &a, const Individual &b) { return a.second < b.second; });
    if (next.size() > options.population)
      next.resize(options.population);
    population = std::move(next);
    offspring.clear();
    bestPerGeneration.push_back(population.front().second);
    if (converged())
      return finished = true, false;
    ++generationIndex;
    unsigned children = options.population - std::min<unsigned>(elites, population.size());
    for (unsigned i = 0; i < children; ++i) {
      Genome child = crossover(tournament(), tournament());
      if (known(child) || std::count(pending.begin(), pending.end(), child))
        child = mutate(child, 1.0 / space.size());
      for (unsigned tries = 0; tries < 20 && (known(child) || std::count(pending.begin(),
                                                                           pending.end(), child));
           ++tries)
        child = mutate(child, 1.0 / space.size());
      if (!known(child) && !std::count(pending.begin(), pending.end(), child))
        pending.push_back(child);
    }
    if (pending.empty())
      return finished = true, false;
    return true;
  }

  /// Generation 0 after the initial point: the seeds, then neighbours of the initial
  /// point (a knob or two changed) up to `localStart` of the population, the rest
  /// uniform random points.
  bool fillRandom() {
    std::vector<Genome> order; // in the order they are measured
    auto listed = [&](const Genome &point) {
      return known(point) || std::count(order.begin(), order.end(), point);
    };
    auto inSpace = [&](const Genome &point) {
      if (point.size() != space.size())
        return false;
      for (size_t i = 0; i < point.size(); ++i)
        if (point[i] >= space[i].values.size())
          return false;
      return true;
    };
    for (const Genome &seed : options.seeds)
      if (order.size() + 1 < options.population && inSpace(seed) && !listed(seed))
        order.push_back(seed);
    unsigned local = unsigned(options.localStart * options.population);
    auto fresh = [&](std::optional<Genome> from, double rate) -> std::optional<Genome> {
      for (unsigned tries = 0; tries < 100; ++tries) {
        std::optional<Genome> point = unmeasured(from, rate, 100);
        if (point && !listed(*point))
          return point;
      }
      return std::nullopt;
    };
    while (order.size() + 1 < options.population) {
      std::optional<Genome> point =
          order.size() < local ? fresh(initial, 1.0 / space.size()) : std::nullopt;
      if (!point)
        point = fresh(std::nullopt, 0);
      if (!point)
        break;
      order.push_back(*point);
    }
    pending.assign(order.rbegin(), order.rend()); // propose() takes from the back
    return !pending.empty();
  }

  bool converged() const {
    if (options.maxGenerations && generationIndex + 1 >= options.maxGenerations)
      return true;
    size_t n = bestPerGeneration.size();
    if (n <= options.patience)
      return false;
    double before = bestPerGeneration[n - 1 - options.patience], now = bestPerGeneration.back();
    if (!std::isfinite(before))
      return false;
    return now > before * (1 - options.minImprovement);
  }

  /// The best of three individuals drawn at random.
  const Genome &tournament() {
    const Individual *winner = &population[below(population.size())];
    for (int i = 1; i < 3; ++i) {
      const Individual &other = population[below(population.size())];
      if (other.second < winner->second)
        winner = &other;
    }
    return winner->first;
  }

  /// Each knob from either parent (uniform crossover), 90% of the time; else a copy.
  Genome crossover(const Genome &a, const Genome &b) {
    if (uniform() >= 0.9)
      return a;
    Genome child(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      child[i] = uniform() < 0.5 ? a[i] : b[i];
    return child;
  }

  SearchOptions options;
  std::vector<Individual> population, offspring;
  std::vector<Genome> pending;
  std::vector<double> bestPerGeneration;
  unsigned generationIndex = 0, outstanding = 0;
  bool started = false, finished = false;
};

} // namespace

std::unique_ptr<ScheduleSearch> createSearch(llvm::StringRef kind, std::vector<SearchKnob> knobs,
                                             Genome initial, const SearchOptions &options) {
  if (kind == "ga")
    return std::make_unique<GeneticSearch>(std::move(knobs), std::move(initial), options);
  if (kind == "sa")
    return std::make_unique<AnnealingSearch>(std::move(knobs), std::move(initial), options.seed);
  if (kind == "random")
    return std::make_unique<RandomSearch>(std::move(knobs), std::move(initial), options.seed);
  return nullptr;
}

} // namespace kiln::tuning
