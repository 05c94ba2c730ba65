"""InRegexp is Go's regexp.MatchString: RE2 syntax, unanchored, linear time."""
import time

import pytest

from compat.nfd.expression import RuleError, evaluate_expression
from compat.nfd.goregexp import RegexpError, compile as go_compile, match_string


def regexp(*patterns):
    return {"op": "InRegexp", "value": list(patterns)}


@pytest.mark.parametrize("pattern,text,expected", [
    ("^(?i)avx", "AVX512F", True),            # flags after ^: valid in Go, an error in Python's re
    ("(?i)^avx", "avx2", True),
    (r"\pL", "a", True),                      # Unicode classes
    (r"\p{Greek}", "\u03b1", True),
    (r"^\PL+$", "123", True),
    ("[[:upper:]]", "A", True),               # POSIX classes (always false in Python's re)
    ("[[:upper:]]", "a", False),
    (r"a\z", "a", True),
    ("al-[1-9]", "val-12", True),             # unanchored: a match anywhere
    ("val-[0-9]$", "val-12", False),
    ("a$", "a\n", False),                      # $ is the end of text, not before a final newline
    ("(?m)^b$", "a\nb", True),
    (".", "\n", False),
    ("(?s).", "\n", True),
    (r"\Q.*\E", "a.*b", True),
    (r"^x{2,1000}$", "xx", True),
    (r"(?U)a+", "aa", True),
    ("^\u00e9$", "\u00e9", True),              # UTF-8 both sides
    ("^a$", "a\udc80", False),                 # a lone surrogate is U+FFFD, as Go's decoders make it
    ("\ufffd", "\udc80", True),
])
def test_go_semantics(pattern, text, expected):
    assert match_string(pattern, text) is expected
    assert evaluate_expression(regexp(pattern), True, text) is expected


@pytest.mark.parametrize("pattern", [
    "(?=a)", "(?!a)", "(?<=a)b",               # look-arounds: not RE2
    r"a\Z",                                     # Python's \Z; Go has only \z
    r"(a)\1",                                   # back-references
    r"\C",                                      # any byte: C++ RE2 only, Go refuses it
    r"[\C]",
    "a{1001}",                                  # repetition limit
    "a++", "(", "[a", "*",
])
def test_patterns_go_refuses_are_errors(pattern):
    with pytest.raises(RegexpError):
        go_compile(pattern)
    with pytest.raises(RuleError):
        evaluate_expression(regexp(pattern), True, "x")
    with pytest.raises(RuleError):             # refused even when there is nothing to match
        evaluate_expression(regexp(pattern), False, None)


def test_escaped_backslash_before_c_and_quoted_c_are_fine():
    assert match_string(r"\\C", "\\C")
    assert match_string(r"\Q\C\E", "\\C")


def test_parse_errors_are_not_logged_to_stderr(capfd):
    with pytest.raises(RegexpError):
        go_compile("(?=nope")
    assert capfd.readouterr().err == ""


def test_nfd_in_regexp_vectors():
    # expression_test.go MatchInRegexp-1..4 and value table 8-10
    assert evaluate_expression(regexp("val-[0-9]$"), False, "val-1") is False
    assert evaluate_expression(regexp("val-[0-9]$"), True, "val-1") is True
    assert evaluate_expression(regexp("val-[0-9]$"), True, "val-12") is False
    assert evaluate_expression(regexp("val-[0-9]$", "al-[1-9]"), True, "val-12") is True
    assert evaluate_expression(regexp("1", "[0-8]"), True, "9") is False
    assert evaluate_expression(regexp("1", "[0-8]"), True, "2") is True


def _best_time(pattern, text, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        match_string(pattern, text)
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.parametrize("pattern", ["^(.+)+!$", "^(a|a)*$b", "(x+x+)+y"])
def test_catastrophic_patterns_run_in_linear_time(pattern):
    """Python's re needs 2**n steps for ^(.+)+!$ on n characters (over two minutes at n=30);
    RE2's time grows with n. Ratio of growth, not absolute speed: 8x the input may cost at most
    ~40x the time (linear is 8x; timer noise on a shared machine gets the rest)."""
    go_compile(pattern)
    small, large = "a" * 50_000, "a" * 400_000
    assert not match_string(pattern, "a" * 64)
    t_small, t_large = _best_time(pattern, small), _best_time(pattern, large)
    assert t_large < 40 * max(t_small, 1e-4)


def test_without_the_re2_binding_a_regexp_rule_is_an_error(monkeypatch):
    import sys
    go_compile.cache_clear()
    monkeypatch.setitem(sys.modules, "re2", None)          # import re2 -> ImportError
    try:
        with pytest.raises(RuleError, match="google-re2"):
            evaluate_expression(regexp("^never-compiled-before$"), True, "x")
    finally:
        go_compile.cache_clear()


def test_re2_is_imported_only_when_a_rule_uses_in_regexp():
    import subprocess
    import sys
    code = ("import sys\n"
            "from compat.nfd.rules import Features, evaluate_rule\n"
            "f = Features(flags={'cpu.cpuid': {'AVX2'}}, attributes={}, instances={})\n"
            "t = lambda op: {'matchFeatures': [{'feature': 'cpu.cpuid', 'matchName': op}]}\n"
            "evaluate_rule(t({'op': 'In', 'value': ['AVX2']}), f)\n"
            "print('re2' in sys.modules)\n"
            "evaluate_rule(t({'op': 'InRegexp', 'value': ['^AVX']}), f)\n"
            "print('re2' in sys.modules)\n")
    from conftest import REPO
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "True"]
