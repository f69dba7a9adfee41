"""bench/conv_pixvec_probe.py: every kernel form of the pixel-vector conv prototype matches a float64 numpy
conv on a tiny shape (edge vectors, padding rows, merged row pairs, the blocked weight), and a variant that
does not fit the shape is refused with exit code 2."""

import re

import pytest

from bench.conv_pixvec_probe import main


@pytest.mark.parametrize(
    "extra",
    [
        ["--variants", "2:1,1", "2:2", "2:1,1:0", "1:1,1:-2", "2:2:2"],
        ["--variants", "2:1,1:0", "--wblock", "--local", "1"],
    ],
    ids=["modes", "wblock"],
)
def test_every_form_matches_numpy(capsys, extra):
    assert main(["--shape", "2,3,16,4", "--calls", "1", *extra]) == 0
    errs = [float(e) for e in re.findall(r"err (\S+)", capsys.readouterr().out)]
    assert len(errs) == len(extra[1 : extra.index("--wblock")] if "--wblock" in extra else extra[1:])
    assert max(errs) < 1e-5


@pytest.mark.parametrize(
    "argv,word",
    [
        (["--variants", "4:3"], "segments"),
        (["--variants", "3:7"], "OT=3"),
        (["--variants", "4:7:3"], "MODE 3"),
        (["--variants", "4:7", "--wblock"], "--wblock"),
        (["--variants", "x"], "OT:SEGMENTS"),
        (["--shape", "1,2"], "--shape"),
    ],
)
def test_a_variant_that_does_not_fit_is_refused(capsys, argv, word):
    assert main(argv) == 2
    assert word in capsys.readouterr().err
