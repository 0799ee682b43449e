"""The notebooks as a user sees them: JupyterLab from the project's environment, driven by a
headless Chromium (issue 14). ``make test-browser`` runs this; the default run never collects it.

Every ``notebooks/*.ipynb`` there is at run time is opened from a temporary copy of the folder
(the repository's files are never touched), run with Run All Cells from the menu in quick mode
(WORKBENCH_QUICK=1), and checked once the kernel is idle: no error outputs, every widget
rendered, every plotly figure drawn (its SVG), no JavaScript errors from the page. Then one
real interaction per widget notebook, each asserting a visible change; a save through the
project's pre-save hook must leave no outputs in the file. Screenshots go to out/browser/.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
OUT = ROOT / "out" / "browser"
RUN_TIMEOUT = float(os.environ.get("WORKBENCH_BROWSER_RUN_TIMEOUT", "420"))  # per notebook
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--disable-background-networking")
#: Settings of the test's own JupyterLab: every cell attached to the page (no windowing, so
#: that each output is rendered), no news or update checks (no network here).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


class StepTimeout(AssertionError):
    """A browser step did not happen in time (the message says which and what was seen)."""


def wait_for(what: str, check: Callable[[], Any], timeout: float, *, every: float = 0.5,
             seen: Callable[[], Any] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; StepTimeout naming ``what`` otherwise."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    state = seen() if seen is not None else last
    raise StepTimeout(f"timed out after {timeout:.0f} s waiting for {what}; last seen: {state!r}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _digest(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


class Lab:
    """A JupyterLab server on 127.0.0.1 with a random port and token, serving ``root``."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = home / "settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = dict(os.environ, WORKBENCH_QUICK="1", JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"),
                   JUPYTER_CONFIG_PATH=str(ROOT / "tools" / "jupyter"),
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = OUT / "lab.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_for("JupyterLab to answer /api/status", self._up, 120,
                     seen=lambda: self.log_path.read_text()[-2000:])
        except BaseException:
            self.stop()
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n"
                                 + self.log_path.read_text()[-3000:])
        try:
            return self.api("GET", "/api/status") is not None
        except OSError:
            return False

    def api(self, method: str, path: str) -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else {}

    def shutdown_kernels(self) -> None:
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(OSError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Iterator[Path]:
    """A copy of notebooks/ to serve; the repository's notebooks must be unchanged after."""
    if not NOTEBOOKS:
        pytest.fail("no notebooks/*.ipynb to test")
    before = _digest(NOTEBOOKS)
    work = tmp_path_factory.mktemp("lab") / "notebooks"
    work.mkdir()
    for path in NOTEBOOKS:
        shutil.copy2(path, work / path.name)
    yield work
    assert _digest(NOTEBOOKS) == before, "the browser test changed notebooks/*.ipynb"


@pytest.fixture(scope="module")
def lab(workdir, tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab from this environment on the copy, in quick mode; stopped at the end."""
    OUT.mkdir(parents=True, exist_ok=True)
    server = Lab(workdir, tmp_path_factory.mktemp("lab-home"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Debian's chromedriver (tools/browser_deps.sh installs both)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chrome = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                               "/usr/lib/chromium/chromium") if p and os.path.exists(p)), None)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chrome is None or not os.path.exists(driver_path):
        pytest.fail("chromium and chromedriver are needed: run `make test-browser` (it "
                    "installs them) or apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # no Selenium Manager downloads
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# -- reading the page --------------------------------------------------------------------------

#: The open notebook's state from JupyterLab's own model (window.jupyterapp).
STATE_JS = """
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (!panel || !panel.content || !panel.content.model || !panel.sessionContext) return null;
const cells = [];
const model = panel.content.model;
for (let i = 0; i < model.cells.length; i++) {
  const c = model.cells.get(i);
  if (c.type !== 'code') continue;
  const outs = c.outputs.toJSON();
  cells.push({index: i, count: c.executionCount,
              prompt: panel.content.widgets[i].promptNode ?
                      panel.content.widgets[i].promptNode.textContent : '',
              errors: outs.filter(o => o.output_type === 'error')
                          .map(o => o.ename + ': ' + o.evalue),
              plotly: outs.filter(o => o.data && o.data['application/vnd.plotly.v1+json']).length,
});
}
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
return {path: panel.context.path, dirty: panel.context.model.dirty,
        kernel: kernel ? kernel.status : null,
        display: panel.sessionContext.kernelDisplayStatus, cells: cells};
"""

#: What the notebook shows: widget placeholders and errors, plotly figures with and without SVG.
RENDER_JS = """
const nb = window.jupyterapp.shell.currentWidget.content.node;
const outputs = [...nb.querySelectorAll('.jp-OutputArea-output')];
const text = o => o.textContent || '';
const plots = [...nb.querySelectorAll('.js-plotly-plot')];
return {
  loading: outputs.filter(o => text(o).includes('Loading widget...')).length,
  broken: outputs.filter(o => text(o).includes('Error displaying widget'))
                 .map(o => text(o).slice(0, 200)),
  widgets: nb.querySelectorAll('.jupyter-widgets').length,
  plots: plots.length,
  plots_without_svg: plots.filter(p => !p.querySelector('svg.main-svg')).length,
  stderr: outputs.filter(o => o.getAttribute('data-mime-type') ===
                               'application/vnd.jupyter.stderr').length,
};
"""


def state(driver: Any) -> dict[str, Any] | None:
    return driver.execute_script(STATE_JS)


def run_all_from_menu(driver: Any) -> None:
    """Run > Run All Cells, clicked in JupyterLab's menu bar."""
    from selenium.webdriver.common.by import By

    menus = driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
    run = next((m for m in menus if m.text.strip() == "Run"), None)
    assert run is not None, f"no Run menu in {[m.text for m in menus]}"
    run.click()
    item = wait_for("the Run All Cells menu item", lambda: [
        e for e in driver.find_elements(By.CSS_SELECTOR, "li.lm-Menu-item")
        if e.is_displayed() and e.text.strip().startswith("Run All Cells")], 15,
        seen=lambda: [e.text for e in driver.find_elements(By.CSS_SELECTOR, "li.lm-Menu-item")
                      if e.is_displayed()])
    item[0].click()


def finished(driver: Any) -> dict[str, Any] | None:
    """The state once every code cell ran and the kernel is idle (or at the first error)."""
    s = state(driver)
    if s is None:
        return None
    if any(c["errors"] for c in s["cells"]):
        return s
    done = all(c["count"] is not None and "*" not in c["prompt"] for c in s["cells"])
    return s if done and s["kernel"] == "idle" else None


def pending(driver: Any) -> Any:
    s = state(driver)
    if s is None:
        return "no notebook open"
    return {"kernel": s["kernel"], "not run yet": [c["index"] for c in s["cells"]
                                                   if c["count"] is None or "*" in c["prompt"]]}


def screenshot(driver: Any, name: str) -> None:
    """The whole notebook in one picture: a window as tall as the notebook (capped)."""
    try:
        height = driver.execute_script(
            "const p = window.jupyterapp.shell.currentWidget;"
            "const cells = p ? [...p.node.querySelectorAll('.jp-Cell')] : [];"
            "return cells.reduce((h, c) => h + c.getBoundingClientRect().height, 0) + 300;")
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": 1400, "height": int(min(max(1000, height + 200), 14000)),
            "deviceScaleFactor": 1, "mobile": False})
        driver.execute_script(
            "const p = window.jupyterapp.shell.currentWidget;"
            "if (p) p.node.querySelectorAll('.jp-WindowedPanel-outer')"
            ".forEach(e => { e.scrollTop = 0; });")
        time.sleep(1.5)
        driver.save_screenshot(str(OUT / f"{name}.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def console_errors(driver: Any) -> list[str]:
    """SEVERE console entries of the page since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


# -- interactions ------------------------------------------------------------------------------

def _buttons(driver: Any, text: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return [b for b in driver.find_elements(By.CSS_SELECTOR, "button.jupyter-button")
            if b.text.strip() == text]


def _click(driver: Any, element: Any) -> None:
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def _plot_last_step(driver: Any, root: Any) -> float:
    """The largest x (mini-batch) drawn in the first plotly figure inside ``root``."""
    return float(driver.execute_script(
        "const p = arguments[0].querySelector('.js-plotly-plot');"
        "const data = p && (p._fullData || p.data);"  # _fullData: typed arrays decoded
        "if (!data) return -1;"
        "return Math.max(-1, ...data.flatMap(t => t.x ? Array.from(t.x) : []));", root))


def _ancestor(driver: Any, element: Any, css: str) -> Any:
    return driver.execute_script("return arguments[0].closest(arguments[1]);", element, css)


def interact_01(driver: Any) -> str:
    """Train then Stop: the progress count grows, the curves gain points (their last
    mini-batch moves on), and the run stops before the end of its budget."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    budget = 1000
    train = wait_for("the panel's Train button enabled",
                     lambda: [b for b in _buttons(driver, "Train") if b.is_enabled()], 60)[0]
    panel = _ancestor(driver, train, ".widget-vbox")
    box = next(h for h in panel.find_elements(By.CSS_SELECTOR, ".widget-inline-hbox")
               if h.text.strip().startswith("mini-batches"))
    field = box.find_element(By.TAG_NAME, "input")
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(str(budget), Keys.ENTER)
    time.sleep(1.0)
    label = panel.find_element(By.CSS_SELECTOR, ".widget-hprogress .widget-label")
    shown_before = _plot_last_step(driver, panel)  # the notebook's own short run
    _click(driver, train)

    def progress() -> int:
        m = re.match(rf"(\d+) / {budget}$", label.text.strip())
        return int(m.group(1)) if m else -1

    first = wait_for(f"training progress to show k / {budget}",
                     lambda: progress() >= 1 and progress(), 120, seen=lambda: label.text)
    wait_for("the progress count to grow", lambda: progress() > first, 120,
             seen=lambda: label.text)
    curve = wait_for("the learning curves of the new run", lambda: (
        (x := _plot_last_step(driver, panel)) > shown_before and x), 120,
        seen=lambda: _plot_last_step(driver, panel))
    wait_for("the learning curves to gain points", lambda: _plot_last_step(driver, panel) >
             curve, 120, seen=lambda: _plot_last_step(driver, panel))
    stop = _buttons(driver, "Stop")[0]
    _click(driver, stop)
    status = wait_for("the panel to say the run stopped", lambda: [
        e.text for e in panel.find_elements(By.CSS_SELECTOR, ".widget-html")
        if "stopped after" in e.text], 120,
        seen=lambda: [e.text for e in panel.find_elements(By.CSS_SELECTOR, ".widget-html")])[0]
    steps = int(re.search(r"stopped after (\d+) mini-batches", status).group(1))
    assert 0 < steps < budget, status
    wait_for("Train enabled again and Stop disabled",
             lambda: train.is_enabled() and not stop.is_enabled(), 30)
    return (f"Train/Stop: curves up to mini-batch {_plot_last_step(driver, panel):.0f}, "
            f"stopped after {steps} of {budget}")


def interact_02(driver: Any) -> str:
    """The explorer's snapshot slider: one step left moves the step label and the heatmap's
    marker to the previous snapshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    slider = next(s for s in driver.find_elements(By.CSS_SELECTOR, ".widget-slider")
                  if s.text.strip().startswith("snapshot"))
    explorer = _ancestor(driver, slider, ".widget-vbox")
    row = _ancestor(driver, slider, ".widget-hbox")

    def step_label() -> int | None:
        m = re.search(r"mini-batch (\d+)", row.text)
        return int(m.group(1)) if m else None

    def marker() -> Any:
        return driver.execute_script(
            "const p = arguments[0].querySelector('.js-plotly-plot');"
            "return p && p.layout && p.layout.shapes && p.layout.shapes.length ?"
            " p.layout.shapes[0].x0 : null;", explorer)

    before = wait_for("the explorer's step label", step_label, 30, seen=lambda: row.text)
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                          "arguments[0].focus();", handle)
    handle.send_keys(Keys.ARROW_LEFT)  # the keyboard, as a user without a mouse moves it
    moved = lambda: step_label() if step_label() not in (None, before) else None  # noqa: E731
    try:
        after = wait_for("the step label to follow the slider's handle", moved, 20,
                         seen=lambda: row.text)
    except StepTimeout:  # type the position into the slider's readout instead
        readout = slider.find_element(By.CSS_SELECTOR, ".widget-readout")
        position = int(readout.text.strip())
        readout.click()
        readout.send_keys(Keys.CONTROL, "a")
        readout.send_keys(str(max(0, position - 1)), Keys.ENTER)
        after = wait_for("the step label to follow the slider's readout", moved, 60,
                         seen=lambda: row.text)
    assert after < before
    wait_for("the heatmap marker to move to the new snapshot",
             lambda: marker() is not None and float(marker()) == after, 60, seen=marker)
    return f"snapshot slider: mini-batch {before} -> {after}"


def _stepper(driver: Any, number: str) -> str:
    """Reset then Step on the first stepper: its rung / iteration number and table change."""
    from selenium.webdriver.common.by import By

    reset = _buttons(driver, "Reset")[0]
    stepper = _ancestor(driver, reset, ".widget-vbox")
    htmls = lambda: [e.get_attribute("innerHTML") for e in  # noqa: E731
                     stepper.find_elements(By.CSS_SELECTOR, ".widget-html")]

    def counter() -> int | None:
        m = re.search(number, stepper.text)
        return int(m.group(1)) if m else None

    _click(driver, reset)
    step = next(b for b in stepper.find_elements(By.CSS_SELECTOR, "button.jupyter-button")
                if b.text.strip() == "Step")
    wait_for("Step enabled after Reset", step.is_enabled, 60)
    start = wait_for("the stepper's counter after Reset", lambda: counter() is not None and
                     (counter(), htmls()), 60, seen=lambda: stepper.text[:300])
    _click(driver, step)
    after = wait_for("the counter to advance after Step", lambda: (
        counter() if counter() is not None and counter() > start[0] else None), 120,
        seen=lambda: stepper.text[:300])
    assert htmls() != start[1], "the table did not change after Step"
    return f"Reset then Step: {number.split(' ')[0]} {start[0]} -> {after}"


def interact_04(driver: Any) -> str:
    return _stepper(driver, r"rung (\d+) of")


def interact_05(driver: Any) -> str:
    return _stepper(driver, r"iteration (\d+)")


INTERACTIONS = {"01": interact_01, "02": interact_02, "04": interact_04, "05": interact_05}


# -- the test ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_renders_in_lab(path, lab, browser, workdir):
    driver, name = browser, path.stem
    started = time.monotonic()
    console_errors(driver)  # drop what earlier pages logged
    driver.get(f"{lab.url}/lab/tree/{path.name}?token={lab.token}&reset")
    try:
        opened = wait_for(f"{path.name} to open with an idle kernel", lambda: (
            (s := state(driver)) is not None and s["path"] == path.name and
            s["kernel"] == "idle" and s), 180, seen=lambda: state(driver))
        version = json.loads(path.read_text())["metadata"].get("language_info", {}).get(
            "version")
        if version == ".".join(map(str, sys.version_info[:3])):
            assert not opened["dirty"], (
                f"{path.name} is marked modified as soon as it opens: store its metadata as "
                "JupyterLab writes it (python tools/notebook_hygiene.py notebooks/*.ipynb)")
        run_all_from_menu(driver)
        result = wait_for(f"every cell of {path.name} to run and the kernel to be idle",
                          lambda: finished(driver), RUN_TIMEOUT, every=1.0,
                          seen=lambda: pending(driver))
        errors = {c["index"]: c["errors"] for c in result["cells"] if c["errors"]}
        assert not errors, f"{path.name}: error outputs in cells {errors}"
        n_plotly = sum(c["plotly"] for c in result["cells"])

        def rendered() -> dict[str, Any] | None:
            r = driver.execute_script(RENDER_JS)
            ok = (not r["loading"] and not r["broken"] and not r["plots_without_svg"]
                  and r["plots"] >= n_plotly)  # (a finished tqdm bar closes its widget)
            return r if ok else None

        shown = wait_for(f"the widgets and figures of {path.name} to render", rendered, 90,
                         seen=lambda: driver.execute_script(RENDER_JS))
        assert not shown["broken"]
        note = INTERACTIONS[name[:2]](driver) if name[:2] in INTERACTIONS else ""
        assert not driver.execute_script(RENDER_JS)["broken"]
        severe = console_errors(driver)
        assert not severe, f"{path.name}: JavaScript errors in the page: {severe[:5]}"
        # a save goes through the project's pre-save hook: no outputs reach the file
        driver.execute_script("return window.jupyterapp.commands.execute('docmanager:save');")
        wait_for(f"{path.name} to be saved", lambda: not state(driver)["dirty"], 60)
        saved = json.loads((workdir / path.name).read_text())
        assert not any(c.get("outputs") or c.get("execution_count") for c in saved["cells"]
                       if c["cell_type"] == "code"), "a save wrote outputs into the notebook"
        assert "widgets" not in saved["metadata"]
        print(f"{path.name}: {len(result['cells'])} code cells, {shown['plots']} figures, "
              f"{shown['widgets']} widget views, {time.monotonic() - started:.0f} s. {note}")
    finally:
        with contextlib.suppress(Exception):
            screenshot(driver, name)
        with contextlib.suppress(Exception):  # leave the page without a 'leave site?' prompt
            driver.execute_script("const p = window.jupyterapp.shell.currentWidget;"
                                  "if (p && p.context) p.context.model.dirty = false;")
        with contextlib.suppress(Exception):
            lab.shutdown_kernels()
