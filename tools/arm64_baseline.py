"""Fails when an arm64 executable holds an instruction Lambda's arm64 baseline cannot run.

Lambda's arm64 functions run on Graviton2 (Neoverse N1) and later: Armv8.2-A with CRC, LSE atomics,
RCpc (LDAPR), dot product, half-precision floating point and the AES/SHA1/SHA256 crypto instructions.
Anything newer (SVE and SVE2, SME, Armv8.3 pointer authentication outside the hint space, Armv8.4
LRCPC2 and flag manipulation, Armv8.5 and later, BF16, I8MM, FP16FML, SHA3, SHA512, SM3/SM4, memory
tagging, LS64, MOPS, CSSC) raises SIGILL on a Graviton2, whatever a newer host or qemu's default
`max` CPU accepts.

    python tools/arm64_baseline.py target/lambda/*/bootstrap

Disassembles each file with GNU objdump for aarch64 (`aarch64-linux-gnu-objdump`, Debian's
binutils-aarch64-linux-gnu: it decodes every extension it knows, so nothing newer hides as an unknown
word) and lists each instruction outside the baseline with its address and the extension it needs.
The exit status is 1 when there is one, 2 when a file cannot be disassembled.
"""
import re
import shutil
import subprocess
import sys
from collections import Counter

# Mnemonics (whole words) of extensions Neoverse N1 lacks, by extension.
FORBIDDEN_MNEMONICS = {
    "Armv8.3 pointer authentication (non-hint)": (
        "pacia pacib pacda pacdb paciza pacizb pacdza pacdzb pacga autia autib autda autdb autiza autizb "
        "autdza autdzb xpaci xpacd braa brab braaz brabz blraa blrab blraaz blrabz retaa retab eretaa "
        "eretab ldraa ldrab"),
    "Armv8.3 JSCVT": "fjcvtzs",
    "Armv8.3 complex numbers (FCMA)": "fcmla fcadd",
    "Armv8.4 LRCPC2": "ldapur ldapurb ldapurh ldapursb ldapursh ldapursw stlur stlurb stlurh",
    "Armv8.4 flag manipulation (FlagM)": "cfinv rmif setf8 setf16",
    "Armv8.5 FlagM2": "axflag xaflag",
    "Armv8.5 FRINTTS": "frint32x frint32z frint64x frint64z",
    "Armv8.5 speculation barrier (SB)": "sb",
    "Armv8.5 memory tagging (MTE)": "irg gmi stg st2g stzg stz2g ldg stgp subp subps addg subg ldgm stgm stzgm",
    "Armv8.6 BF16": "bfdot bfmmla bfmlalb bfmlalt bfcvt bfcvtn bfcvtn2 bfmlal",
    "Armv8.6 I8MM": "smmla ummla usmmla usdot sudot",
    "Armv8.7 WFxT": "wfet wfit",
    "Armv8.7 LS64": "ld64b st64b st64bv st64bv0",
    "Armv8.8 MOPS": (
        "cpyp cpym cpye cpyfp cpyfm cpyfe cpypn cpymn cpyen cpyfpn cpyfmn cpyfen cpyprn cpymrn cpyern "
        "cpypwn cpymwn cpyewn cpyfprn cpyfmrn cpyfern cpyfpwn cpyfmwn cpyfewn setp setm sete setpn setmn "
        "setgp setgm setge"),
    "Armv8.9 CSSC": "ctz",
    "Armv9.4 LSE128": "ldclrp ldclrpa ldclrpal ldclrpl ldsetp ldsetpa ldsetpal ldsetpl swpp swppa swppal swppl",
    "Armv8.9 RCPC3": "ldiapp stilp ldap1 stl1",
    "FP16FML": "fmlal fmlal2 fmlsl fmlsl2",
    "SHA3": "eor3 bcax rax1 xar",
    "SHA512": "sha512h sha512h2 sha512su0 sha512su1",
    "SM3/SM4": "sm3ss1 sm3tt1a sm3tt1b sm3tt2a sm3tt2b sm3partw1 sm3partw2 sm4e sm4ekey",
    "SVE": (
        "addvl addpl rdvl cntb cnth cntw cntd incb inch incw incd decb dech decw decd sqincb sqinch sqincw "
        "sqincd sqdecb sqdech sqdecw sqdecd uqincb uqinch uqincw uqincd uqdecb uqdech uqdecw uqdecd "
        "setffr rdffr rdffrs wrffr ptrue ptrues pfalse whilelo whilels whilelt whilele ptest"),
    "SME": "smstart smstop addsvl addspl rdsvl zero",
}
MNEMONIC_FEATURE = {m: feature for feature, names in FORBIDDEN_MNEMONICS.items() for m in names.split()}

# CSSC's scalar forms share their names with Advanced SIMD instructions N1 has: only the forms on
# general-purpose registers are newer.
CSSC_SCALAR = {"abs", "cnt", "smax", "smin", "umax", "umin"}
GPR = re.compile(r"^\s*[wx](?:[0-9]|[12][0-9]|30)\b")

# Operands that only newer extensions have: SVE vector and predicate registers, SME's ZA array and
# ZT0, and system registers or cache operations of later architecture versions.
OPERAND_RULES = [
    (re.compile(r"\bz(?:[0-9]|[12][0-9]|3[01])\b"), "SVE (z register)"),
    (re.compile(r"\bpn?(?:[0-9]|1[0-5])\b"), "SVE (predicate register)"),
    (re.compile(r"\bza(?:[0-9]*[bhsdq]?(?:[hv])?(?:\.[bhsdq])?)?\b|\bzt0\b"), "SME (ZA storage)"),
    (re.compile(r"\b(?:zcr_el[12]|svcr|smcr_el[12]|ffr)\b"), "SVE/SME system register"),
    (re.compile(r"\b(?:rndr|rndrrs)\b"), "Armv8.5 RNG"),
    (re.compile(r"\bdit\b"), "Armv8.4 DIT"),
    (re.compile(r"\btco\b"), "Armv8.5 memory tagging (MTE)"),
    (re.compile(r"\b(?:cvadp)\b"), "Armv8.5 DPB2"),
    (re.compile(r"\b(?:gva|gzva|cgvac|cgdvac|cgvap|cgdvap|cgvadp|cgdvadp|igvac|igsw|igdvac|igdsw|cgsw|cgdsw|cigsw|cigdsw|cigvac|cigdvac)\b"),
     "Armv8.5 memory tagging (MTE)"),
]

LINE = re.compile(
    r"^\s*(?P<addr>[0-9a-f]+):\s+"
    r"(?:[0-9a-f]{8}\s+|(?:[0-9a-f]{2} ){4}\s*)?"  # the raw word, if the disassembler printed it
    r"(?P<mnemonic>[a-z][a-z0-9.]*)\b(?P<operands>[^\n]*)$")


def check_line(line):
    """The extension a line of aarch64 disassembly needs beyond Neoverse N1, or None."""
    match = LINE.match(line)
    if not match:
        return None
    mnemonic = match["mnemonic"].split(".")[0]
    # Symbol names (`<foo+0x10>`) and comments are not operands.
    operands = re.sub(r"<[^>]*>", "", match["operands"])
    operands = re.split(r"//|;", operands)[0].strip()
    if mnemonic in (".inst", ".word") or mnemonic.startswith("."):
        return None
    if mnemonic in MNEMONIC_FEATURE:
        return MNEMONIC_FEATURE[mnemonic]
    if mnemonic in CSSC_SCALAR and GPR.match(operands):
        return "Armv8.9 CSSC"
    for pattern, feature in OPERAND_RULES:
        if pattern.search(operands):
            return feature
    return None


def findings(lines):
    """(line, extension) for every instruction outside the baseline."""
    out = []
    for line in lines:
        feature = check_line(line)
        if feature:
            out.append((line.rstrip("\n"), feature))
    return out


def objdump():
    path = shutil.which("aarch64-linux-gnu-objdump")
    if path:
        return [path, "-d", "--no-show-raw-insn"]
    sys.exit("arm64-baseline: aarch64-linux-gnu-objdump is missing (apt-get install binutils-aarch64-linux-gnu)")


def check_file(path, show=20):
    """Prints a verdict for one executable; returns the number of instructions outside the baseline."""
    proc = subprocess.Popen([*objdump(), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    instructions = 0
    found = []
    for line in proc.stdout:
        if LINE.match(line):
            instructions += 1
            feature = check_line(line)
            if feature:
                found.append((line.rstrip("\n"), feature))
    err = proc.stderr.read()
    if proc.wait() != 0 or instructions == 0:
        print(f"arm64-baseline: {path}: cannot disassemble: {err.strip()[:300]}")
        return None
    if not found:
        print(f"arm64-baseline: {path}: {instructions} instructions, all within Neoverse N1 (Armv8.2-A + "
              "crc, lse, rcpc, dotprod, fp16, crypto)")
        return 0
    by_feature = Counter(f for _, f in found)
    print(f"arm64-baseline: {path}: {len(found)} of {instructions} instructions need more than Neoverse N1: "
          + ", ".join(f"{f} ×{n}" for f, n in by_feature.most_common()))
    for line, feature in found[:show]:
        print(f"    {line.strip()}    [{feature}]")
    return len(found)


def main(argv):
    if not argv:
        sys.exit(__doc__)
    status = 0
    for path in argv:
        result = check_file(path)
        if result is None:
            status = max(status, 2)
        elif result:
            status = max(status, 1)
    sys.exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
