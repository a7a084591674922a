"""History: a read-only mapping of metric -> per-epoch list, its plot, its bounded window,
and the progress report."""

import copy
import io
import math
import pickle
import sys
from collections.abc import Mapping

import numpy as np
import pytest

from fastbp import History, Model


def _clf(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)


def _model(seed=1):
    return Model([4, 6, 3], activation="tanh", loss="cross_entropy", seed=seed)


def _trained():
    X, y = _clf()
    m = _model()
    m.fit(X, y, epochs=2)
    m.fit(X, y, epochs=3, validation_data=(X[:10], y[:10]))  # val_* from epoch 2 on
    return m


# ---------------------------------------------------------------- the mapping
def test_history_is_a_read_only_mapping_of_equal_length_lists():
    h = _trained().history
    assert isinstance(h, Mapping)
    d = dict(h)
    assert list(d) == list(h.keys()) == list(h.metrics)
    assert set(d) == {"loss", "time", "lr", "accuracy", "val_loss", "val_accuracy"}
    assert len(h) == len(d) and h.epochs == 5
    assert all(isinstance(v, list) and len(v) == 5 for v in d.values())
    # metrics first recorded in a later epoch read NaN before it
    assert all(math.isnan(v) for v in d["val_loss"][:2])
    assert all(math.isfinite(v) for v in d["val_loss"][2:])
    # read-only: no item assignment, and the lists handed out are copies
    with pytest.raises(TypeError):
        h["loss"] = [0.0]
    h["loss"].append(1.0)
    h["loss"][0] = -1.0
    assert len(h.metrics["loss"]) == 5 and h.metrics["loss"][0] != -1.0
    with pytest.raises(KeyError, match="'nope' is not in the history; it has"):
        h["nope"]
    assert "loss" in h and h.get("nope") is None
    assert dict(h.items())["lr"] == h["lr"]
    for mutate in (lambda: h.update(a=[1.0]), lambda: h.pop("loss"), h.clear,
                   lambda: h.setdefault("a", []), lambda: h.__delitem__("loss")):
        with pytest.raises(TypeError, match="History is read-only"):
            mutate()
    copied = dict(h)
    copied["loss"].append(2.0)
    for v in h.values():
        v.append(3.0)
    assert all(len(v) == 5 for v in h.metrics.values())
    # the live lists are readable without a copy
    assert h.metrics["loss"] is h.metrics["loss"]
    # copies and pickles are Histories with the same record
    for other in (copy.deepcopy(h), pickle.loads(pickle.dumps(h))):
        assert type(other) is History and other.epochs == 5
        assert other["loss"] == h["loss"] and other.events == h.events


def test_history_makes_a_dataframe_with_a_row_per_epoch():
    pd = pytest.importorskip("pandas")
    h = _trained().history
    df = pd.DataFrame(h)
    assert df.shape == (5, 6) and list(df.columns) == list(h.keys())
    assert df["val_loss"].isna().tolist() == [True, True, False, False, False]
    np.testing.assert_array_equal(df["loss"].to_numpy(), h["loss"])


# ---------------------------------------------------------------- plot
def test_plot_draws_loss_and_val_loss_and_returns_the_axes():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = _trained().history
    ax = h.plot()
    try:
        assert [ln.get_label() for ln in ax.get_lines()] == ["loss", "val_loss"]
        x, y = ax.get_lines()[0].get_data()
        assert list(x) == [0, 1, 2, 3, 4] and list(y) == h["loss"]
        assert ax.get_xlabel() == "epoch"
    finally:
        plt.close(ax.figure)
    fig, given = plt.subplots()
    try:
        assert h.plot(ax=given, metrics="accuracy") is given
        assert [ln.get_label() for ln in given.get_lines()] == ["accuracy"]
        with pytest.raises(ValueError, match=r"metrics=\['acc'\] are not in the history"):
            h.plot(ax=given, metrics=["acc"])
    finally:
        plt.close(fig)


def test_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match="pip install matplotlib"):
        History().plot()


# ---------------------------------------------------------------- bounded history
def test_online_training_keeps_a_bounded_window():
    X, y = _clf()
    m = _model()
    m.history.max_epochs = 4
    seen = []
    for i in range(10):  # one call per chunk, as online learning does
        m.partial_fit(X[i:i + 4], y[i:i + 4], callbacks=[lambda e, logs: seen.append(e)])
    h = m.history
    assert h.epochs == 10 and h.first_epoch == 6
    assert all(len(v) == 4 for v in h.values())
    assert seen == list(range(10))  # epoch numbers keep counting over dropped epochs
    assert "first_epoch=6" in repr(h)
    # one long call keeps all of its own epochs; the next call trims back to the window
    m.fit(X, y, epochs=7)
    assert h.epochs == 17 and len(h["loss"]) == 7 and h.first_epoch == 10
    m.partial_fit(X, y)
    assert h.epochs == 18 and len(h["loss"]) == 4 and h.first_epoch == 14
    # reset starts a new history, keeping the user's setting
    m.fit(X, y, epochs=1, reset=True)
    assert m.history.epochs == 1 and m.history.first_epoch == 0 and m.history.max_epochs == 4


def test_window_default_none_and_events_bound():
    h = History()
    assert h.max_epochs == History.MAX_EPOCHS == 10_000
    for _ in range(30):
        h.append(loss=1.0, time=0.0)
    h.trim()
    assert h.epochs == 30 and h.first_epoch == 0  # within the window
    h.max_epochs = 10
    h.trim()
    assert (h.epochs, h.first_epoch, len(h["loss"])) == (30, 20, 10)
    h.truncate(25, 0)  # a rollback to epoch 25 (model-wide)
    assert (h.epochs, len(h["time"])) == (25, 5)
    h.max_epochs = None
    for _ in range(30):
        h.append(loss=1.0, time=0.0)
    h.trim()
    assert h.epochs == 55 and len(h["loss"]) == 35
    h.max_epochs = 10
    h.events = [{"event": "interrupted"}] * (History.MAX_EVENTS + 5)
    h.trim()
    assert len(h.events) == History.MAX_EVENTS


def test_first_epoch_is_saved_and_loaded(tmp_path):
    X, y = _clf()
    m = _model()
    m.history.max_epochs = 2
    for _ in range(5):
        m.partial_fit(X, y)
    m.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    assert loaded.history.first_epoch == 3 and loaded.history.epochs == 5
    assert dict(loaded.history) == dict(m.history)


# ---------------------------------------------------------------- progress
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_to_a_file_is_one_line_per_epoch_with_accuracy(monkeypatch):
    X, y = _clf()
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    _model().fit(X, y, epochs=3, verbose=True, validation_split=0.25)
    text = err.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 3 and lines[2].startswith("fastbp fit: epoch 3/3: loss=")
    assert all("accuracy=" in ln and "val_accuracy=" in ln for ln in lines)


def test_progress_on_a_terminal_is_a_bar_showing_accuracy(monkeypatch):
    pytest.importorskip("tqdm")
    X, y = _clf()
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    _model().fit(X, y, epochs=2, verbose=True)
    text = err.getvalue()
    assert "\r" in text and "2/2" in text and "accuracy=" in text
    assert "fastbp fit: epoch" not in text
    # regression has no accuracy to show
    err.seek(0)
    err.truncate()
    Model([4, 3, 1], seed=0).fit(X, X[:, 0], epochs=1, verbose=True)
    assert "loss=" in err.getvalue() and "accuracy" not in err.getvalue()
