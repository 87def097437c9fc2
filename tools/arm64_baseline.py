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

An instruction outside the baseline is allowed only inside a function listed in RUNTIME_DISPATCHED,
and only of the extensions listed for it: code its library reaches only after a run-time check says
the CPU has the extension (or, in the unwinder, only for frames of code that itself needs it)
(ring reads the CPU's capabilities from the kernel's HWCAP, aws-lc its ID registers into
OPENSSL_armcap_P, and each calls, say, its SHA-512 routine for the SHA512 extension only when that
bit is set). Such a finding is counted, named by symbol and passes; the same instruction in any other function fails. The check needs the symbol table: run it on an
unstripped link (`make build-arm64` links with symbols, checks, then strips the bootstrap it ships);
in a stripped file every finding fails, since nothing says which function holds it.

The exit status is 1 when a finding is not allowed, 2 when a file cannot be disassembled.
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

# Functions that hold instructions beyond Neoverse N1 and run only when the CPU (or the code being
# unwound) has the extension, each with the extensions it may hold and why it is safe. Patterns match
# the whole symbol; aws-lc prefixes its symbols with `aws_lc_<version>_`. An instruction of another
# extension in the same function still fails.
AWS_LC = r"(?:aws_lc_[0-9]+_[0-9]+_[0-9]+_)?"
# LLVM libunwind (linked by the zig toolchain cargo-lambda uses) for the local arm64 address space.
LIBUNWIND = r"_ZN9libunwind(?:12UnwindCursor|17DwarfInstructions)INS_17LocalAddressSpaceENS_15Registers_arm64EE"
MTE = "Armv8.5 memory tagging (MTE)"
RUNTIME_DISPATCHED = [
    (re.compile(r"ring_core_[0-9]+_[0-9]+_[0-9]+_+sha512_block_data_order_hw"), {"SHA512"},
     "SHA512: ring's sha512-armv8 with the SHA512 extension (the TLS the SDK clients use); "
     "digest/sha2/sha2_64.rs calls it only when cpu.get_feature::<arm::Sha512>(), which "
     "cpu/arm/linux.rs sets from HWCAP_SHA512 in getauxval(AT_HWCAP)"),
    (re.compile(AWS_LC + r"sha512_block_data_order_hw"), {"SHA512"},
     "SHA512: sha512-armv8's SHA-512 with the SHA512 extension; sha/internal.h selects it only when "
     "CRYPTO_is_ARMv8_SHA512_capable() (OPENSSL_armcap_P & ARMV8_SHA512)"),
    (re.compile(AWS_LC + r"aesv8_gcm_8x_(?:enc|dec)_(?:128|192|256)"), {"SHA3"},
     "SHA3 (EOR3): aesv8-gcm-armv8-unroll8's AES-GCM; modes/gcm.c calls it only when "
     "CRYPTO_is_ARMv8_GCM_8x_capable() (ARMV8_SHA3 and a Neoverse V1/V2/V3 or Apple M core)"),
    (re.compile(AWS_LC + r"armv8_(?:get|set|restore)_dit"), {"Armv8.4 DIT"},
     "DIT (MSR/MRS DIT): cpucap/cpu_aarch64.c's functions test CRYPTO_is_ARMv8_DIT_capable() before "
     "touching the register"),
    (re.compile(AWS_LC + r"CRYPTO_rndr(?:_multiple8)?"), {"Armv8.5 RNG"},
     "RNG (RNDR): rand/entropy calls it only after have_hw_rng_aarch64() (OPENSSL_armcap_P & ARMV8_RNG)"),
    (re.compile(r"_ZN8crc_fast4arch23update_aarch64_aes_sha317h[0-9a-f]{16}E"
                r"|_ZN98_\$LT\$crc_fast\.\.arch\.\.aarch64\.\.aes_sha3\.\.Aarch64AesSha3Ops\$u20\$as\$u20\$"
                r"crc_fast\.\.traits\.\.ArchOps\$GT\$\w+"), {"SHA3"},
     "SHA3 (EOR3): crc-fast's CRC64/CRC32 for the S3 SDK's checksums; arch::update calls it, and the "
     "Aarch64AesSha3Ops it uses exist, only when feature_detection chose the AesSha3 tier, i.e. "
     "is_aarch64_feature_detected!(\"sha3\") (HWCAP_SHA3)"),
    (re.compile(r"_ZN8crc_fast5crc326fusion7aarch64(?:20crc32_iscsi|23crc32_iso_hdlc)_aes_sha317h[0-9a-f]{16}E"),
     {"SHA3"},
     "SHA3 (EOR3): crc-fast's fused CRC32/CRC32C; crc32_iscsi and crc32_iso_hdlc call these only when "
     "is_aarch64_feature_detected!(\"sha3\")"),
    (re.compile(r"__libunwind_Registers_arm64_za_disable"), {"SME", "SME (ZA storage)"},
     "SME (SMSTOP ZA): libunwind's Registers_arm64::zaDisable calls it only when checkHasSME() found "
     "HWCAP2_SME in getauxval(AT_HWCAP2)"),
    (re.compile(LIBUNWIND + r"(?:6getReg|13stepWithDwarf|6getCFA|16getSavedRegister|18evaluateExpression)E\w*"),
     {"SVE"},
     "SVE (CNTD): libunwind's Registers_arm64::lazyGetVG, read only for DWARF register VG (46), which "
     "only the CFI of SVE code names, and SVE code runs only on a CPU that has SVE"),
    (re.compile(LIBUNWIND + r"13stepWithDwarf\w*"), {MTE},
     "MTE (STG): libunwind's stepWithDwarf retags a frame only when its CIE augmentation has 'G' "
     "(stack tagging), which only code built for MTE emits"),
]

SYMBOL = re.compile(r"^[0-9a-f]+ <(?P<name>.+)>:\s*$")

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
    return [(line, feature) for line, feature, _, _ in classify(lines)]


def dispatch_reason(symbol, feature=None):
    """Why an instruction of `feature` beyond the baseline may sit in `symbol`, or None when it may not.
    Without a feature, whether any listed extension may."""
    for pattern, features, reason in RUNTIME_DISPATCHED:
        if symbol and pattern.fullmatch(symbol) and (feature is None or feature in features):
            return reason
    return None


def classify(lines):
    """(line, extension, enclosing symbol, reason it is allowed or None) per instruction outside the
    baseline; the symbol is the last `<name>:` header objdump printed before the line."""
    out = []
    symbol = None
    for line in lines:
        header = SYMBOL.match(line)
        if header:
            symbol = header["name"]
            continue
        feature = check_line(line)
        if feature:
            out.append((line.rstrip("\n"), feature, symbol, dispatch_reason(symbol, feature)))
    return out


def objdump():
    path = shutil.which("aarch64-linux-gnu-objdump")
    if path:
        return [path, "-d", "--no-show-raw-insn"]
    sys.exit("arm64-baseline: aarch64-linux-gnu-objdump is missing (apt-get install binutils-aarch64-linux-gnu)")


def check_file(path, show=20):
    """Prints a verdict for one executable; returns the number of instructions outside the baseline
    that are not in a run-time dispatched function (None when it cannot be disassembled)."""
    proc = subprocess.Popen([*objdump(), str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    instructions = 0

    def counted(stream):
        nonlocal instructions
        for line in stream:
            if LINE.match(line):
                instructions += 1
            yield line

    found = classify(counted(proc.stdout))
    err = proc.stderr.read()
    if proc.wait() != 0 or instructions == 0:
        print(f"arm64-baseline: {path}: cannot disassemble: {err.strip()[:300]}")
        return None
    return report(path, instructions, found, show)


def report(path, instructions, found, show=20):
    """Prints the verdict for classified findings; returns how many are not allowed."""
    allowed = [f for f in found if f[3]]
    bad = [f for f in found if not f[3]]
    if allowed:
        by_symbol = Counter((symbol, feature) for _, feature, symbol, _ in allowed)
        print(f"arm64-baseline: {path}: {len(allowed)} instructions beyond Neoverse N1 in functions reached "
              "only after a CPU-feature check (ring, aws-lc, crc-fast) or for frames of such code (libunwind):")
        for (symbol, feature), n in sorted(by_symbol.items()):
            print(f"    {symbol}: {feature} ×{n}")
    if not bad:
        print(f"arm64-baseline: {path}: {instructions} instructions, none beyond Neoverse N1 (Armv8.2-A + "
              "crc, lse, rcpc, dotprod, fp16, crypto) outside those")
        return 0
    by_feature = Counter(f for _, f, _, _ in bad)
    print(f"arm64-baseline: {path}: FAILED: {len(bad)} of {instructions} instructions need more than Neoverse N1 "
          "outside a run-time dispatched function: " + ", ".join(f"{f} ×{n}" for f, n in by_feature.most_common()))
    for line, feature, symbol, _ in bad[:show]:
        print(f"    {symbol or '(no symbol)'}: {line.strip()}    [{feature}]")
    return len(bad)


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
