"""tools/package_size.py: the 4 MB budget for zipped bootstraps, image-compressor's exception for
its codecs, by the directory names `make build-arm64` and `sam build` write."""
import os
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import package_size  # noqa: E402


class Budget(unittest.TestCase):
    def test_within_budget_passes_and_over_it_fails_unless_codecs(self):
        found = package_size.verdicts([
            ("target/lambda/user-api/bootstrap", 8_000_000, 3_999_999),
            ("target/lambda/order-processor/bootstrap", 8_000_000, 4_000_000),
            ("target/lambda/image-compressor/bootstrap", 16_000_000, 6_600_000),
            (".aws-sam/build/ImageCompressorFunction/bootstrap", 16_000_000, 6_600_000),
            (".aws-sam/build/OrderSettlementFunction/bootstrap", 8_000_000, 4_100_000),
        ])
        self.assertEqual([verdict for *_, verdict in found], [
            None, "OVER THE BUDGET", "over, allowed: its image codecs", "over, allowed: its image codecs",
            "OVER THE BUDGET"])

    def test_a_name_that_only_contains_the_codec_function_is_not_exempt(self):
        self.assertFalse(package_size.has_codecs("target/lambda/not-image-compressor/bootstrap"))
        self.assertTrue(package_size.has_codecs("target/lambda/image-compressor/bootstrap"))


class OnFiles(unittest.TestCase):
    """The exit status on real files: random bytes do not compress, so their size is the zip's."""

    def bootstrap(self, root, function, size):
        path = Path(root) / function / "bootstrap"
        path.parent.mkdir()
        path.write_bytes(os.urandom(size))
        return str(path)

    def test_exit_status(self):
        with tempfile.TemporaryDirectory() as root:
            small = self.bootstrap(root, "user-api", 2000)
            large = self.bootstrap(root, "order-processor", 6000)
            codecs = self.bootstrap(root, "image-compressor", 6000)
            self.assertEqual(package_size.main([small, codecs, "--limit", "5000"]), 0)
            self.assertEqual(package_size.main([small, large, "--limit", "5000"]), 1)
            self.assertEqual(package_size.main([small, str(Path(root) / "missing" / "bootstrap")]), 2)
            self.assertGreaterEqual(package_size.zipped_size(large), 6000)


if __name__ == "__main__":
    unittest.main()
