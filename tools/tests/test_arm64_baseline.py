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


SYMBOLS = (HERE / "fixtures" / "arm64_symbols.txt").read_text().splitlines()
RING_HW = "ring_core_0_17_14__sha512_block_data_order_hw"
RING_NOHW = "ring_core_0_17_14__sha512_block_data_order_nohw"


class RuntimeDispatched(unittest.TestCase):
    """fixtures/arm64_symbols.txt: the same newer instructions inside aws-lc's and ring's run-time
    dispatched functions (SHA-512 `_hw`, the 8x-unrolled AES-GCM, DIT) and inside functions that are not
    (a Rust function, aws-lc's and ring's portable `_nohw` variants, a name that only contains an allowed
    one), and an instruction of another extension inside ring's SHA-512 `_hw`."""

    def verdicts(self):
        return [(symbol, reason is not None) for _, _, symbol, reason in arm64_baseline.classify(SYMBOLS)]

    def test_each_finding_is_named_by_its_symbol(self):
        symbols = [symbol for symbol, _ in self.verdicts()]
        self.assertEqual(symbols, ["aws_lc_0_35_0_sha512_block_data_order_hw"] * 2 + ["aws_lc_0_35_0_aesv8_gcm_8x_enc_128"] * 2
                         + ["aws_lc_0_35_0_armv8_set_dit", "_ZN12image_resize6kernel17h0123456789abcdefE",
                            "aws_lc_0_35_0_sha512_block_data_order_nohw", "my_sha512_block_data_order_hw_wrapper"]
                         + [RING_HW] * 2 + [RING_NOHW])

    def test_in_a_run_time_dispatched_function_it_passes(self):
        allowed = {symbol for symbol, ok in self.verdicts() if ok}
        self.assertEqual(allowed, {"aws_lc_0_35_0_sha512_block_data_order_hw", "aws_lc_0_35_0_aesv8_gcm_8x_enc_128",
                                   "aws_lc_0_35_0_armv8_set_dit", RING_HW})

    def test_anywhere_else_it_fails(self):
        refused = [symbol for symbol, ok in self.verdicts() if not ok]
        self.assertEqual(refused, ["_ZN12image_resize6kernel17h0123456789abcdefE",
                                   "aws_lc_0_35_0_sha512_block_data_order_nohw",
                                   "my_sha512_block_data_order_hw_wrapper", RING_HW, RING_NOHW])

    def test_ring_sha512_hw_may_hold_sha512_and_nothing_newer(self):
        ring = [(line.split(":")[-1].split()[0], reason is not None)
                for line, _, symbol, reason in arm64_baseline.classify(SYMBOLS) if symbol == RING_HW]
        self.assertEqual(ring, [("sha512h2", True), ("eor3", False)])

    def test_the_verdict_counts_only_the_refused(self):
        found = arm64_baseline.classify(SYMBOLS)
        self.assertEqual(arm64_baseline.report("fixture", 15, found), 5)
        allowed_only = [f for f in found if f[3]]
        self.assertEqual(arm64_baseline.report("fixture", 15, allowed_only), 0)

    def test_a_stripped_file_allows_nothing(self):
        stripped = ["0000000000401000 <.text>:" if line.endswith(">:") else line for line in SYMBOLS]
        self.assertTrue(all(reason is None for *_, reason in arm64_baseline.classify(stripped)))


UNWINDER_CRC = (HERE / "fixtures" / "arm64_unwinder_crc.txt").read_text().splitlines()


class UnwinderAndChecksums(unittest.TestCase):
    """fixtures/arm64_unwinder_crc.txt: crc-fast's SHA3 CRC routines and LLVM libunwind's SME, SVE (VG)
    and MTE code, each allowed only for the extension its guard checks: a SHA3 instruction in the
    unwinder, SVE in an unwinder function that never reads VG, and SHA3 in crc-fast's AES-only path fail."""

    def verdicts(self):
        return [(symbol.split("E", 1)[0][-30:] if symbol.startswith("_ZN") else symbol, feature, reason is not None)
                for _, feature, symbol, reason in arm64_baseline.classify(UNWINDER_CRC)]

    def test_each_guarded_extension_passes_only_where_its_guard_is(self):
        self.assertEqual([(feature, ok) for _, feature, ok in self.verdicts()], [
            ("SHA3", True),  # crc_fast::arch::update_aarch64_aes_sha3
            ("SHA3", True),  # crc_fast fused crc32_iscsi_aes_sha3
            ("SHA3", False),  # crc_fast::arch::update_aarch64_aes: no SHA3 check guards it
            ("SME", True), ("SME", True),  # za_disable, after HWCAP2_SME
            ("Armv8.5 memory tagging (MTE)", True),  # stepWithDwarf, CIE 'G' frames only
            ("SVE", True),  # stepWithDwarf reading VG
            ("SHA3", False),  # stepWithDwarf has no SHA3 guard
            ("SVE", True),  # UnwindCursor::getReg(VG)
            ("SVE", False),  # jumpto never reads VG
        ])

    def test_the_verdict_counts_the_three_refused(self):
        found = arm64_baseline.classify(UNWINDER_CRC)
        self.assertEqual(arm64_baseline.report("fixture", 16, found), 3)
