"""The HTML run report: derived numbers on a made-up journal, then a real run's page
opened in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimage

from colmena_fx.cli import main
from colmena_fx.federation import Federation
from colmena_fx.models import Stamp
from colmena_fx.report import plots
from colmena_fx.report import write_report
from colmena_fx.report.data import RunNotFoundError
from colmena_fx.report.data import Steps
from colmena_fx.report.data import busy_steps
from colmena_fx.report.data import load_report_data
from testing import browser
from testing.sites import PROCESS_POOL
from testing.sites import THREAD_POOL
from testing.sites import FederationFactory

START_NS = 1_800_000_000_000_000_000
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
#: Remote clocks: site -> (host, offset from the client's clock, one-way delay).
CLOCKS = {"a": ("node-a", 5.0, 0.01), "b": ("node-b", -2.0, 0.02)}


def _ns(seconds: float) -> int:
    return START_NS + round(seconds * 1e9)


def made_up_task(
    task_id: str,
    site: str,
    created: float,
    compute: tuple[float, float],
    delivered: float,
    success: bool = True,
    endpoint_stamps: bool = True,
) -> dict[str, Any]:
    """A task's journal record; times in client seconds after the run started.

    Remote stamps are written in the site's own clock, with the same delay each
    way, so the estimated offset is exact at the round trips and corrected times
    come back as given, within what the unknown drift allows between them.
    """
    host, offset, delay = CLOCKS[site]
    sent = created + 0.002
    remote = [
        (Stamp.ENDPOINT_RECEIVED, sent + delay),
        (Stamp.WORKER_STARTED, compute[0] - 0.001),
        (Stamp.COMPUTE_STARTED, compute[0]),
        (Stamp.COMPUTE_ENDED, compute[1]),
        (Stamp.WORKER_ENDED, compute[1] + 0.001),
        (Stamp.ENDPOINT_SENT, compute[1] + 0.002),
    ]
    if not endpoint_stamps:  # what a Globus Compute site reports
        remote = remote[1:-1]
    received = compute[1] + 0.002 + delay
    events = [
        [Stamp.CREATED, _ns(created), "client"],
        [Stamp.SERIALIZED, _ns(created + 0.001), "client"],
        [Stamp.SENT, _ns(sent), "client"],
        *([name, _ns(t + offset), host] for name, t in remote),
        [Stamp.RECEIVED, _ns(received), "client"],
        [Stamp.DESERIALIZED, _ns(received + 0.001), "client"],
        [Stamp.DELIVERED, _ns(delivered), "client"],
    ]
    return {
        "task_id": task_id,
        "method": f"work-{site}",
        "topic": "default",
        "site": site,
        "success": success,
        "timeline": {"events": [[str(n), t, h] for n, t, h in events]},
    }


def write_journal(run_dir: Path, tasks: list[dict[str, Any]]) -> Path:
    run_dir.mkdir(parents=True)
    run = {"federation": "made-up", "client_host": "client", "clocks": "estimate",
           "sites": {"a": "local", "b": "globus", "idle": "local"}}  # fmt: skip
    lines = [{"event": "run", "time_ns": START_NS, "task": run}]
    lines += [{"event": "delivered", "time_ns": 0, "task": task} for task in tasks]
    (run_dir / "journal.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return run_dir


def made_up_run(run_dir: Path) -> Path:
    return write_journal(run_dir, [
        made_up_task("t0", "a", created=0.1, compute=(1.0, 3.0), delivered=3.1),
        made_up_task("t1", "a", created=0.2, compute=(2.0, 4.0), delivered=4.1),
        made_up_task("t2", "a", created=3.2, compute=(4.0, 5.0), delivered=5.1),
        made_up_task("t3", "b", created=4.15, compute=(4.5, 4.6), delivered=4.8),
        made_up_task("t4", "b", created=5.3, compute=(5.4, 5.5), delivered=5.7,
                     success=False),
    ])  # fmt: skip


def test_derived_numbers_of_a_made_up_run(tmp_path: Path) -> None:
    data = load_report_data(made_up_run(tmp_path / "run"))
    assert data.header.federation == "made-up"
    assert data.header.run_name == "run"
    assert [(s.site, s.transport, s.succeeded, s.failed) for s in data.sites] == [
        ("a", "local", 3, 0), ("b", "globus", 1, 1), ("idle", "local", 0, 0),
    ]  # fmt: skip
    assert data.span_s == pytest.approx((0.1, 5.7))
    # each result to the next task created after it; t4 came after the last one
    np.testing.assert_allclose(np.sort(data.decision_s), [0.05, 0.1, 0.2, 0.5])
    # remote clocks 5 s ahead and 2 s behind, corrected: compute at the given times
    busy = data.busy["a"]
    # three round trips leave the clock's rate free within +-500 ppm: corrected
    # stamps come back within what that allows over a few seconds
    np.testing.assert_allclose(busy.times_s, [0.1, 1, 2, 3, 4, 5, 5.7], atol=1e-3)
    assert busy.values.tolist() == [0, 1, 2, 1, 1, 0, 0]  # t1 hands over to t2
    assert busy.peak == 2
    assert busy.mean() == pytest.approx(5.0 / 5.6, abs=1e-3)
    # failed tasks occupied a worker too
    np.testing.assert_allclose(
        data.busy["b"].times_s, [0.1, 4.5, 4.6, 5.4, 5.5, 5.7], atol=1e-3
    )
    assert data.busy["b"].values.tolist() == [0, 1, 0, 1, 0, 0]
    np.testing.assert_allclose(data.round_trips["a"], [2.91, 3.81, 1.81])
    np.testing.assert_allclose(data.round_trips["b"], [0.47])  # t4 failed
    truth = {"a": 5.0, "b": -2.0}
    for clock in data.offsets:
        assert abs(clock.offset_s - truth[clock.site]) <= clock.uncertainty_s, clock


def test_hops_merge_where_a_site_hides_its_endpoint(tmp_path: Path) -> None:
    run = write_journal(tmp_path / "run", [
        made_up_task("t0", "a", created=0.1, compute=(1.0, 2.0), delivered=2.1),
        made_up_task("t1", "b", created=0.2, compute=(1.0, 1.5), delivered=1.6,
                     endpoint_stamps=False),
    ])  # fmt: skip
    data = load_report_data(run)
    merged = [hop for hop, _ in data.hop_medians["b"]]
    assert merged[1:3] == ["client_queue", "link_out+endpoint_queue+worker_start"]
    assert "worker_return+endpoint_return+link_back" in merged
    # one colour per hop name across sites, in chain order
    order = data.hop_order
    assert order.index("link_out") < order.index("link_out+endpoint_queue+worker_start")
    assert set(order) >= {hop for hop, _ in data.hop_medians["a"]} | set(merged)
    page = write_report(run).read_text()
    assert "link_out+endpoint_queue+worker_start" in page
    assert len(IMG.findall(page)) == 3
    assert "No task was created after a result was delivered" in page


def test_busy_steps_of_no_intervals() -> None:
    steps = busy_steps(np.array([np.nan]), np.array([1.0]), (0.5, 3.0))
    assert steps.times_s.tolist() == [0.5, 3.0]
    assert steps.values.tolist() == [0, 0]
    assert steps.peak == 0 and steps.mean() == 0.0


def test_long_runs_are_drawn_binned() -> None:
    steps = Steps(np.array([0.0, 1, 2, 3, 4]), np.array([0, 2, 1, 0, 0]))
    edges, mean, peak = steps.binned(2)
    assert edges.tolist() == [0, 2, 4]
    assert mean.tolist() == [1.0, 0.5]
    assert peak.tolist() == [2, 1]
    _, mean, peak = steps.binned(4)
    assert mean.tolist() == [0, 2, 1, 0] and peak.tolist() == [0, 2, 1, 0]
    # more steps than pixels: each bin's mean and peak, still readable
    rng = np.random.default_rng(3)
    starts = np.sort(rng.uniform(0, 100, 5000))
    dense = busy_steps(starts, starts + rng.exponential(0.05, 5000), (0, 100))
    png = plots.png_bytes(plots.utilization({"s": dense}, (0, 100)))
    assert coloured_pixels(mpimage.imread(io.BytesIO(png), format="png")) > 2000


def test_empty_and_failed_only_runs_still_get_a_page(tmp_path: Path) -> None:
    empty = write_report(write_journal(tmp_path / "empty", [])).read_text()
    assert "This run finished no tasks" in empty
    assert "<img" not in empty
    failed = write_journal(tmp_path / "failed", [
        made_up_task("t0", "a", created=0.1, compute=(1.0, 2.0), delivered=2.1,
                     success=False),
    ])  # fmt: skip
    page = write_report(failed, tmp_path / "out").read_text()
    assert "Every task of this run failed" in page
    assert "No successful tasks" in page
    assert not (tmp_path / "out" / "hops.png").exists()
    assert (tmp_path / "out" / "utilization.png").exists()  # it still computed


def test_a_directory_without_journal_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(RunNotFoundError, match=r"journal.jsonl not found: pass a run"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "journal.jsonl not found" in capsys.readouterr().err


# -- a real run, rendered ---------------------------------------------------------


def run_small_campaign(federation: Federation, tasks: int = 36) -> None:
    """A thinker in miniature: every result it gets makes it submit the next task."""

    def submit(i: int) -> None:
        if i % 2:
            federation.submit("add", i, kwargs={"b": 1})
        elif i % 9 == 0:
            federation.submit("fail_with", f"task {i} fails")
        else:
            federation.submit("sleep_then", 0.02, i)

    submitted = 0
    for submitted in range(4):
        submit(submitted)
    for _ in range(tasks):
        result = federation.get_result(timeout=60)
        assert result is not None
        federation.processed(result)
        if submitted + 1 < tasks:
            submitted += 1
            submit(submitted)


def images_of(page: str) -> list[np.ndarray]:
    return [
        mpimage.imread(io.BytesIO(base64.b64decode(data)), format="png")
        for data in IMG.findall(page)
    ]


def coloured_pixels(rgba: np.ndarray) -> int:
    """Pixels with a clear hue: drawn data, never text or page background."""
    rgb = rgba[..., :3]
    return int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.25).sum())


def test_report_of_a_real_run_renders_in_chromium(
    make_federation: FederationFactory, tmp_path: Path
) -> None:
    def on(site: str, name: str) -> dict[str, str]:
        return {"site": site, "function": f"testing.tasks:{name}"}

    federation = make_federation(
        {"sleep_then": on("a", "sleep_then"), "fail_with": on("a", "fail_with"),
         "add": on("b", "add")},
        sites={"a": PROCESS_POOL, "b": THREAD_POOL},
    )  # fmt: skip
    run_small_campaign(federation)
    federation.stop()
    assert federation.run_dir is not None

    out = tmp_path / "report"
    assert main(["report", str(federation.run_dir), "--out", str(out)]) == 0
    page_path = out / "report.html"
    page = page_path.read_text()
    for name in ("hops", "round_trips", "utilization", "decision_latency"):
        assert (out / f"{name}.png").stat().st_size > 5000
    images = images_of(page)
    assert len(images) == 4
    for rgba in images:
        assert rgba.shape[0] > 200 and rgba.shape[1] > 500
        assert coloured_pixels(rgba) > 2000  # bars, curves: not a blank canvas
    # self-contained: nothing fetched, nothing run
    assert "<script" not in page
    assert re.search(r'(src|href)="(?!data:image/png;base64,)', page) is None
    assert re.search(r"<td>a</td><td>local</td><td class=\"num\">\d+</td>", page)

    # Chromium decodes every image at its full size...
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", SIZES_SCRIPT + "</body>"))
    dom = browser.dump_dom(probe, tmp_path / "chromium-profile")
    sizes = re.search(r'<pre id="sizes">([^<]*)</pre>', dom)
    assert sizes is not None, dom[-2000:]
    assert sizes.group(1).split() == [f"{i.shape[1]}x{i.shape[0]}" for i in images]
    # ...and draws them: the page's colour comes from its plots alone
    shot = browser.screenshot(page_path, tmp_path / "page.png",
                              tmp_path / "chromium-profile")  # fmt: skip
    assert coloured_pixels(mpimage.imread(shot)) > 0.5 * sum(
        coloured_pixels(i) for i in images
    )


#: For the probe copy only: the natural size of each image once the page loaded.
SIZES_SCRIPT = """<script>
window.addEventListener("load", () => {
  const sizes = document.createElement("pre");
  sizes.id = "sizes";
  sizes.textContent = Array.from(document.images)
    .map((image) => image.naturalWidth + "x" + image.naturalHeight).join(" ");
  document.body.append(sizes);
});
</script>"""
