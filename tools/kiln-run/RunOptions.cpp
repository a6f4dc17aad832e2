// kiln-run's command-line parser: `--opt VALUE` or `--opt=VALUE`, one positional model.
#include "RunOptions.h"

#include "Npy.h"
#include "NumberOption.h"

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <cstdlib>
#include <limits>

namespace kiln::tools {

namespace {

TensorFileBinding parseBinding(const std::string &value) {
  size_t equals = value.find('=');
  if (equals == std::string::npos)
    return {"", value};
  return {value.substr(0, equals), value.substr(equals + 1)};
}

Expected<double> parseTolerance(const std::string &option, const std::string &value) {
  char *end = nullptr;
  errno = 0;
  double number = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || errno != 0 || !(number >= 0) ||
      number == std::numeric_limits<double>::infinity())
    return Error{option + " expects a finite non-negative number, got '" + value + "'"};
  return number;
}

} // namespace

std::string runUsage() {
  return "kiln-run: runs a compiled .kiln model on .npy inputs and checks its outputs\n"
         "\n"
         "usage: kiln-run MODEL.kiln [options]\n"
         "\n"
         "  --input NAME=FILE.npy       bind the input NAME\n"
         "  --input FILE.npy            bind the next unbound input, in entry-point order\n"
         "  --output NAME=FILE.npy      write the output NAME to a .npy file\n"
         "  --output FILE.npy           write the next unwritten output\n"
         "  --output-dir DIR            write every output to DIR/<output name>.npy\n"
         "  --compare NAME=EXPECTED.npy compare the output NAME with expected values\n"
         "  --compare EXPECTED.npy      compare the next uncompared output\n"
         "  --rtol R                    relative tolerance for floats (default 1e-4)\n"
         "  --atol A                    absolute tolerance for floats (default 1e-5)\n"
         "  --entry NAME                entry point to run (default: the only one)\n"
         "  --threads N                 kernel worker threads (default 0: one per CPU)\n"
         "  --device D                  where the kernels run: cpu (default) or cuda (an\n"
         "                              NVIDIA GPU; the model needs code for it:\n"
         "                              kiln-compile --target=cuda)\n"
         "  --repeat N                  run N times, report the mean time (default 1)\n"
         "  --profile                   time every kernel call: print a table per kernel\n"
         "                              and write a Chrome trace (Perfetto opens it)\n"
         "  --trace FILE.json           where --profile writes the trace (default\n"
         "                              kiln-trace.json); implies --profile\n"
         "  --interleave OTHER.kiln     also run OTHER.kiln (the same entry point and\n"
         "                              inputs), alternating with the model run by run, and\n"
         "                              report its time too (with --profile, as a track of\n"
         "                              its own): an A/B comparison in which a drift of the\n"
         "                              machine's speed slows both alike\n"
         "  --quiet                     print only mismatches and errors\n"
         "  --help                      print this help\n"
         "\n"
         "Floats match when |got - expected| <= atol + rtol * |expected|; NaN matches NaN\n"
         "and an infinity only itself. Integers and bools must be equal. The default\n"
         "tolerances allow for f32 kernels that reassociate sums (tiled, vectorized and\n"
         "parallel reductions add in a different order than a sequential reference, which\n"
         "moves results by a few ulps per accumulated term).\n"
         "\n"
         "Integer data whose width matches the input but whose signedness differs (uint8\n"
         "data for an i8 input) is accepted: the compiler represents ONNX's unsigned types\n"
         "as signless integers.\n"
         "\n"
         ".npy dtypes read: " +
         supportedNpyDTypes() +
         " (C order, versions 1.0-3.0)\n"
         "\n"
         "Exit status: 0 success, 1 a comparison mismatch, 2 a usage, file or runtime "
         "error.\n";
}

Expected<RunOptions> parseRunOptions(int argc, char **argv) {
  RunOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      options.help = true;
      return options;
    }
    if (arg == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (arg == "--profile") {
      options.profile = true;
      continue;
    }
    if (arg.empty() || arg[0] != '-') {
      if (!options.modelPath.empty())
        return Error{"more than one model given ('" + options.modelPath + "' and '" + arg +
                     "')"};
      options.modelPath = arg;
      continue;
    }
    if (arg.compare(0, 2, "--") != 0)
      return Error{"unknown option '" + arg + "' (see --help)"};

    // Every other option takes a value, inline (--rtol=1e-3) or as the next argument.
    std::string option = arg.substr(0, arg.find('='));
    static const char *const valuedOptions[] = {"--input",  "--output",  "--compare",
                                                "--output-dir", "--entry", "--rtol",
                                                "--atol",   "--threads", "--repeat",
                                                "--trace", "--interleave", "--device"};
    if (std::find(std::begin(valuedOptions), std::end(valuedOptions), option) ==
        std::end(valuedOptions))
      return Error{"unknown option '" + option + "' (see --help)"};
    std::string value;
    if (option.size() < arg.size())
      value = arg.substr(option.size() + 1);
    else if (i + 1 < argc)
      value = argv[++i];
    else
      return Error{option + " needs a value (see --help)"};

    if (option == "--input") {
      options.inputs.push_back(parseBinding(value));
    } else if (option == "--output") {
      options.outputs.push_back(parseBinding(value));
    } else if (option == "--compare") {
      options.compares.push_back(parseBinding(value));
    } else if (option == "--output-dir") {
      options.outputDir = value;
    } else if (option == "--entry") {
      options.entryPoint = value;
    } else if (option == "--device") {
      options.device = value;
    } else if (option == "--interleave") {
      options.interleavePath = value;
    } else if (option == "--trace") {
      options.profile = true;
      options.tracePath = value;
    } else if (option == "--rtol" || option == "--atol") {
      Expected<double> tolerance = parseTolerance(option, value);
      if (!tolerance)
        return tolerance.error();
      (option == "--rtol" ? options.tolerance.rtol : options.tolerance.atol) = *tolerance;
    } else {
      Expected<int> count = parseCount(option, value, option == "--threads" ? 0 : 1);
      if (!count)
        return count.error();
      (option == "--threads" ? options.threads : options.repeat) = *count;
    }
  }
  if (options.modelPath.empty())
    return Error{"no model given (usage: kiln-run MODEL.kiln [options]; see --help)"};
  if (options.profile && options.tracePath.empty())
    options.tracePath = "kiln-trace.json";
  return options;
}

} // namespace kiln::tools
