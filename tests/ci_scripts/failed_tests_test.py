#!/usr/bin/env python3
"""scripts/failed_tests.py against the JUnit file a real ctest writes for a small project: two failing tests
(one GoogleTest-like, its failure far from its output's end) and one passing; then the cases where it has
nothing to show. Usage: failed_tests_test.py FAILED_TESTS_PY CTEST CMAKE"""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT, CTEST, CMAKE = sys.argv[1:4]

PROJECT = """cmake_minimum_required(VERSION 3.16)
project(demo LANGUAGES NONE)
enable_testing()
add_test(NAME passes COMMAND sh -c "echo fine")
add_test(NAME gtest_like COMMAND sh -c "echo start; echo 'x_test.cpp:12: Failure'; echo 'Expected: 1'; \
for i in $(seq 1 40); do echo line$i; done; exit 1")
add_test(NAME plain_exit COMMAND sh -c "echo only-line; exit 3")
"""


def run_report(*args):
    done = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


class FailedTestsReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        src, build = os.path.join(cls.tmp.name, "src"), os.path.join(cls.tmp.name, "build")
        os.makedirs(src)
        with open(os.path.join(src, "CMakeLists.txt"), "w", encoding="utf-8") as f:
            f.write(PROJECT)
        subprocess.run([CMAKE, "-S", src, "-B", build], capture_output=True, check=True)
        cls.junit = os.path.join(cls.tmp.name, "junit.xml")
        subprocess.run([CTEST, "--test-dir", build, "--output-junit", cls.junit], capture_output=True, check=False)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_names_every_failed_test_and_not_the_passing_one(self):
        code, out = run_report("tests", self.junit)
        self.assertEqual(code, 0, out)
        self.assertIn("== tests: 2 failed test(s)", out)
        self.assertIn("gtest_like (", out)
        self.assertIn("plain_exit (", out)
        self.assertNotIn("passes (", out)

    def test_shows_the_first_failure_mark_and_the_end_of_the_output(self):
        _, out = run_report("tests", self.junit, "--lines", "10")
        self.assertIn("-- gtest_like: its first failure (line 2)", out)
        self.assertIn("x_test.cpp:12: Failure", out)
        self.assertIn("-- gtest_like: last 10 of 43 output lines", out)
        self.assertIn("line40", out)
        self.assertNotIn("line30\n", out.split("last 10 of")[1].split("-- plain_exit")[0])
        self.assertIn("only-line", out)

    def test_no_results_or_no_failure_exit_1_so_the_caller_shows_its_log(self):
        code, out = run_report("tests", os.path.join(self.tmp.name, "missing.xml"))
        self.assertEqual(code, 1)
        self.assertIn("no test results to report", out)
        passing = os.path.join(self.tmp.name, "passing.xml")
        with open(passing, "w", encoding="utf-8") as f:
            f.write('<testsuite tests="1" failures="0"><testcase name="passes" status="run" time="0.1"/></testsuite>')
        code, out = run_report("tests", passing)
        self.assertEqual(code, 1)
        self.assertIn("no failed test", out)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
