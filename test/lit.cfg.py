# lit configuration for kiln's FileCheck tests.
import os

import lit.formats

config.name = "kiln"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["lit.cfg.py", "lit.site.cfg.py", "CMakeLists.txt", "unit", "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.kiln_obj_root, "test")

# kiln's tools first, then LLVM's FileCheck and not (Debian installs only -22 suffixed
# names in /usr/bin).
config.environment["PATH"] = os.pathsep.join(
    [config.kiln_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
config.substitutions.append(("%kiln_src_root", config.kiln_src_root))
# kiln-compile reads the user's tuning database by default; tests compile with the
# defaults unless they name a database (this file is never created).
config.environment["KILN_TUNING_DB"] = os.path.join(config.test_exec_root,
                                                    "no-tuning-database.sqlite")

# The CUDA toolkit's PTX assembler, for the CUDA backend's tests (REQUIRES: ptxas).
import shutil
ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
if os.path.exists(ptxas):
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
