"""tools/arm64_baseline.py offline, on GNU objdump's disassembly of two small objects
(fixtures/arm64_allowed.txt: Armv8.2-A with the extensions Neoverse N1 has, and the hint-space
pointer-authentication and BTI instructions it runs as no-ops; fixtures/arm64_forbidden.txt: one
instruction each of SVE, SME, LRCPC2, FlagM, BF16, I8MM, LS64, MTE, SHA3, SHA512, JSCVT, PAuth,
FCMA, FP16FML, RNG, FRINTTS and CSSC), each with and without the raw instruction words."""
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import arm64_baseline  # noqa: E402

ALLOWED = (HERE / "fixtures" / "arm64_allowed.txt").read_text().splitlines()
FORBIDDEN = (HERE / "fixtures" / "arm64_forbidden.txt").read_text().splitlines()


def instructions(lines):
    return [line for line in lines if arm64_baseline.LINE.match(line)]


class Baseline(unittest.TestCase):
    def test_the_fixtures_are_parsed_as_instructions(self):
        self.assertEqual(len(instructions(ALLOWED)), 27 + 6)
        self.assertEqual(len(instructions(FORBIDDEN)), 29 + 4)

    def test_what_neoverse_n1_runs_passes(self):
        self.assertEqual(arm64_baseline.findings(ALLOWED), [])

    def test_every_newer_instruction_is_found(self):
        found = arm64_baseline.findings(FORBIDDEN)
        self.assertEqual([line for line, _ in found], instructions(FORBIDDEN))

    def test_the_extension_is_named(self):
        by_mnemonic = {line.split("\t")[-2 if line.count("\t") > 1 else -1].strip().split()[0]: feature
                       for line, feature in arm64_baseline.findings(FORBIDDEN)}
        expected = {
            "ld1d": "SVE (z register)", "ptrue": "SVE", "ldr": "SVE (predicate register)",
            "ldapur": "Armv8.4 LRCPC2", "stlur": "Armv8.4 LRCPC2",
            "cfinv": "Armv8.4 flag manipulation (FlagM)", "setf8": "Armv8.4 flag manipulation (FlagM)",
            "bfdot": "Armv8.6 BF16", "smmla": "Armv8.6 I8MM", "usmmla": "Armv8.6 I8MM",
            "ld64b": "Armv8.7 LS64", "irg": "Armv8.5 memory tagging (MTE)", "eor3": "SHA3", "bcax": "SHA3",
            "sha512h": "SHA512", "fjcvtzs": "Armv8.3 JSCVT", "retaa": "Armv8.3 pointer authentication (non-hint)",
            "fmlal": "FP16FML", "mrs": "Armv8.5 RNG", "abs": "Armv8.9 CSSC", "smstart": "SME",
        }
        for mnemonic, feature in expected.items():
            self.assertEqual(by_mnemonic.get(mnemonic), feature, mnemonic)

    def test_same_names_on_older_operands_pass(self):
        # Advanced SIMD `abs`/`cnt` (Armv8.0) share CSSC's names; `mrs` of an Armv8.0 register; a symbol
        # whose name looks like a register.
        for line in ("  48:\tabs\tv0.4s, v1.4s", "  4c:\tcnt\tv0.8b, v1.8b", "  5c:\tmrs\tx0, tpidr_el0",
                     "  64:\tbl\t64 <z0_p1_za>"):
            self.assertIsNone(arm64_baseline.check_line(line), line)

    def test_lines_that_are_not_instructions_are_skipped(self):
        for line in ("0000000000401000 <_start>:", "Disassembly of section .text:", "",
                     "target/lambda/x/bootstrap:     file format elf64-littleaarch64",
                     "  401234:\t.inst\t0x05a0e000 ; undefined"):
            self.assertIsNone(arm64_baseline.check_line(line), line)


if __name__ == "__main__":
    unittest.main()
