"""common.py - what the browser tests share: headless Chromium with its
own profile, waits for something on the page (stretched by
FS_TEST_TIMEOUT_SCALE, never a fixed sleep), and screenshots."""
import os

from selenium import webdriver
from selenium.common.exceptions import (StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SHOTS = os.environ["FS_SHOTS"]
SCALE = int(os.environ.get("FS_TEST_TIMEOUT_SCALE", "1") or 1)
CURRENT = [None]  # the browser in use: a test may kill one and start another


class Failed(Exception):
    pass


def browser(width=1200, height=900):
    opt = webdriver.ChromeOptions()
    opt.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-extensions", "--disable-sync",
              "--window-size=%d,%d" % (width, height),
              "--user-data-dir=" + os.environ["FS_PROFILE"],
              # Nothing leaves the machine: the pages need no network.
              "--disable-background-networking", "--disable-component-update"):
        opt.add_argument(a)
    CURRENT[0] = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opt)
    return CURRENT[0]


def wait(d, what, cond, secs=30):
    def attempt(_):
        try:
            return cond()
        except WebDriverException as e:
            # A page replaced while it is read (it reloads from nothing
            # when its session ends) is read again; Chromium says so in
            # words, not as a stale element.
            if "does not belong to the document" in str(e):
                return False
            raise
    try:
        # A list the page redraws while it is read is read again.
        return WebDriverWait(d, secs * SCALE, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(attempt)
    except TimeoutException:
        raise Failed("%s (waited %d s)" % (what, secs * SCALE)) from None


def visible(d, eid):
    els = d.find_elements(By.ID, eid)
    return els and els[0].is_displayed()


def text(d, eid):
    return d.find_element(By.ID, eid).text


def shot(d, prefix, name):
    path = os.path.join(SHOTS, "%s-%s.png" % (prefix, name))
    d.save_screenshot(path)
    print("screenshot", path)


def main(run, start):
    """Run run(start()), screenshot a failure, and quit the browser in use."""
    try:
        run(start())
    except Failed as e:
        try:
            CURRENT[0].save_screenshot(os.path.join(SHOTS, "failure.png"))
        finally:
            print("FAIL:", e)
        return 1
    finally:
        try:
            CURRENT[0].quit()
        except Exception:  # a browser the test killed has nothing to quit
            pass
    print("browser: ok")
    return 0
