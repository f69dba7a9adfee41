"""bench/conv_thread_ab.py: a bad --shape is refused with exit code 2; a tiny conv times in a child process."""

from bench.conv_thread_ab import main, run_column


def test_bad_shape_is_refused(capsys):
    assert main(["--shape", "1,2"]) == 2
    assert "--shape" in capsys.readouterr().err


def test_tiny_conv_times_in_a_child():
    r = run_column(".", calls=1, threads=1, shape=(1, 2, 6, 2))
    assert isinstance(r, list), r
    assert len(r) == 4 and all(v > 0 for v in r)
