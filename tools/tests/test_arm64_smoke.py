"""tools/arm64_smoke.py offline: its boot cases cover every function and set what template.yaml sets,
so a variable a function starts to require fails here, not as an unexplained boot failure under qemu."""
import sys
import unittest
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
import arm64_smoke  # noqa: E402


class Loader(yaml.SafeLoader):
    pass


# CloudFormation's short intrinsics (!Ref, !Sub, !GetAtt...) read as plain values.
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_variables():
    """Function code directory name -> the environment variable names template.yaml gives it."""
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    out = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function" and name.endswith("Function"):
            fn = "".join("-" + c.lower() if c.isupper() else c for c in name[:-len("Function")]).lstrip("-")
            out[fn] = set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    return out


class BootCases(unittest.TestCase):
    def test_every_function_boots(self):
        self.assertEqual(set(arm64_smoke.CASES), set(arm64_smoke.FUNCTIONS))
        self.assertEqual(set(template_variables()), set(arm64_smoke.FUNCTIONS))

    def test_each_case_sets_what_the_template_sets(self):
        for fn, names in template_variables().items():
            env = arm64_smoke.CASES[fn][0]
            missing = names - set(env) - arm64_smoke.LEFT_TO_DEFAULTS[fn]
            self.assertEqual(missing, set(), f"{fn}: the smoke case does not set {sorted(missing)}")
            stale = arm64_smoke.LEFT_TO_DEFAULTS[fn] - names
            self.assertEqual(stale, set(), f"{fn}: LEFT_TO_DEFAULTS names what the template no longer sets")

    def test_the_jpeg_quality_is_the_deployed_default(self):
        template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
        self.assertEqual(arm64_smoke.template_jpeg_quality(), int(template["Parameters"]["JpegQuality"]["Default"]))


if __name__ == "__main__":
    unittest.main()
