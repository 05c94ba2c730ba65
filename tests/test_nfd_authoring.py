"""compat-generated NFD artifacts: the kernel requirement becomes integer comparisons of
kernel.version major/minor/revision, which hold on every distribution's release string (NFD's
``full`` is no semantic version on RHEL: ``4.18.0-513.el8.x86_64`` is refused as one)."""
import pytest

from compat.author.nfd import spec_for
from compat.nfd.features import kernel_version
from compat.nfd.rules import Features, RuleError, evaluate_spec

from helpers import P  # noqa: E402


@pytest.mark.parametrize("requirement,release,expected", [
    (">=5.10", "5.10.0-28-amd64", True),
    (">=5.10", "5.9.16", False),
    (">=5.10", "6.1.0", True),
    (">=5.10", "4.18.0-513.el8.x86_64", False),
    (">=4.18", "4.18.0-513.el8.x86_64", True),
    (">=5.10,<7", "6.8.0-45-generic", True),
    (">=5.10,<7", "7.0.1", False),
    (">4.18.0", "4.18.0-513.el8.x86_64", False),
    (">4.18.0", "4.18.1", True),
    ("<=5.14", "5.14.0-427.13.1.el9_4.x86_64", True),
    ("<=5.14", "5.15.0", False),
    ("==5.14", "5.14.0-427.13.1.el9_4.x86_64", True),
    ("==5.14", "5.15.0", False),
    ("<5", "4.19.0", True),
])
def test_generated_kernel_rules_hold_as_compat_decides(requirement, release, expected):
    spec = spec_for({P + "os.kernel": requirement}, "t")
    features = Features(flags={}, attributes={"kernel.version": kernel_version(release)}, instances={})
    assert evaluate_spec(spec, features)[0].ok is expected


def test_full_as_a_version_is_an_error_on_rhel():
    """Why the generator does not compare ``full``: NFD (Masterminds semver) refuses it."""
    rule = {"rules": [{"matchFeatures": [{"feature": "kernel.version", "matchExpressions": {
        "full": {"op": "Ge", "value": ["4.18"], "type": "version"}}}]}]}
    features = Features(flags={}, attributes={"kernel.version": kernel_version("4.18.0-513.el8.x86_64")},
                        instances={})
    with pytest.raises(RuleError, match="not a version"):
        evaluate_spec({"version": "v1alpha1", "compatibilities": [rule]}, features)


def test_kernel_version_attributes_as_nfd_parses_them():
    assert kernel_version("4.18.0-513.el8.x86_64") == {"full": "4.18.0-513.el8.x86_64", "major": "4",
                                                       "minor": "18", "revision": "0"}
    assert kernel_version("6.8-rc1") == {"full": "6.8-rc1", "major": "6", "minor": "8", "revision": ""}
    assert kernel_version("5.15.0+custom") == {"full": "5.15.0_custom"}
