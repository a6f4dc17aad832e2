// kiln-tune --report: convergence plots (SVG) of the searches recorded in a tuning
// database, and an HTML page that shows them with the GA-vs-random figures.
#ifndef KILN_TOOLS_KILN_TUNE_CONVERGENCEREPORT_H
#define KILN_TOOLS_KILN_TUNE_CONVERGENCEREPORT_H

#include "compiler/Tuning/TuningDatabase.h"

#include <string>
#include <vector>

namespace kiln::tune {

/// Writes DIR/index.html and one DIR/kernel-N.svg per kernel that a search tuned: the
/// best speed-up over the default schedule against trials, one line per search (the
/// latest session of each), and per kernel the trials the genetic algorithm needed to
/// reach random search's final best and random search the GA's, with the median of each
/// over the kernels where the other search found at least 2%. Returns the page's path.
llvm::Expected<std::string> writeConvergenceReport(const std::vector<tuning::Trial> &trials,
                                                   const std::string &directory);

} // namespace kiln::tune

#endif // KILN_TOOLS_KILN_TUNE_CONVERGENCEREPORT_H
