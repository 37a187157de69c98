"""Runs one integration test module for meson: unittest's verbose run,
exit 0 when it passed, 1 when it failed, and 77 (meson's SKIP) when every
test in it was skipped -- a suite that could not run must not read OK."""

import sys
import unittest


def main():
    name = sys.argv[1]
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    # (a class skipped in setUpClass counts as one skip and no test run)
    if result.skipped and len(result.skipped) >= result.testsRun:
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
