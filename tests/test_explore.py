"""limits.explore: the slice on screen (columns, frontier, walls) and the served page driven by
a real headless Chromium (a slider moved, the chart's data changes)."""

import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from helpers_datasets import model_dataset, write_store

from limits.analysis import non_dominated, open_store
from limits.errors import ParameterError
from limits.explore import MAX_POINTS, default_free, slice_points

AXES = {"tp": [1.0, 8.0], "batch": [1.0, 16.0, 256.0], "context": [4096.0, 131072.0]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("explore") / "sweep.zarr"
    return write_store(model_dataset(**AXES), path)


def test_slice_points_reads_one_slice_with_frontier_and_walls(store):
    ds = open_store(store)
    assert default_free(ds) == ["tp", "batch"]
    cols = slice_points(ds, ["tp", "batch"], {"context": 1}, "utps", "stps")
    ref = ds.isel(context=1).compute()
    np.testing.assert_array_equal(cols["stps"], ref["stps"].transpose("tp", "batch").values.ravel())
    assert cols["tp"].tolist() == [1.0, 1.0, 1.0, 8.0, 8.0, 8.0]
    ok = ref["feasible"].transpose("tp", "batch").values.ravel()
    xs = np.where(ok, cols["utps"], np.nan)
    ys = np.where(ok, cols["stps"], np.nan)
    np.testing.assert_array_equal(cols["pareto"], non_dominated(xs, ys))
    assert set(cols["bound_label"]) <= {"memory", "compute", "sync", "capacity"}
    with pytest.raises(ParameterError, match="not axes of the store"):
        slice_points(ds, ["nonsense"], {}, "utps", "stps")
    assert MAX_POINTS >= 100_000


_FIND_HANDLES = """
const found = [];
const visit = (root) => {
  root.querySelectorAll('*').forEach((el) => {
    if (el.classList && el.classList.contains('noUi-handle')) found.push(el);
    if (el.shadowRoot) visit(el.shadowRoot);
  });
};
visit(document);
return found;
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_real_browser_moves_a_slider_and_the_chart_changes(store):
    found = _chromium()
    if found is None:
        pytest.skip("no chromium + chromedriver (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "limits.explore", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    browser = None
    try:
        assert "serving" in server.stdout.readline()
        browser = webdriver.Chrome(
            service=webdriver.ChromeService(executable_path=found[1]), options=options
        )
        browser.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(browser, 60)
        read = (
            "const d = window.Bokeh && Bokeh.documents[0];"
            "const m = d && d.get_model_by_name('points');"
            "return m ? Array.from(m.data.stps) : null;"
        )
        before = wait.until(lambda b: b.execute_script(read))
        status = "return Bokeh.documents[0].get_model_by_name('status').text;"
        assert "6</b> points over tp x batch" in browser.execute_script(status)
        handles = browser.execute_script(_FIND_HANDLES)  # Bokeh 3 draws in shadow roots
        assert len(handles) == 3  # one slider per grid axis: tp, batch (both free), context
        handles[2].send_keys(Keys.ARROW_RIGHT)  # context 4096 -> 131072 tokens
        wait.until(lambda b: b.execute_script(read) != before)
        after = browser.execute_script(read)
        assert "context = 131072" in browser.execute_script(status)
        assert all(a <= b for a, b in zip(after, before)) and after != before
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()
