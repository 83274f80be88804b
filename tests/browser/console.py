"""console.py - HQ's console in headless Chromium, as an administrator
and a viewer use it (run by tests/cli/test_browser_console.sh, which sets
the scene: HQ with two accounts and devices in Sjenica and Tutin).

Every wait is for something on the page, with a limit that
FS_TEST_TIMEOUT_SCALE stretches.  Screenshots go to FS_SHOTS.
"""
import os
import sys

from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failed, browser, main, shot as shot_as, text, visible, wait  # noqa: E402

URL = os.environ["FS_CONSOLE_URL"]
ADMIN_PW = os.environ["FS_ADMIN_PASSWORD"]
VIEWER_PW = os.environ["FS_VIEWER_PASSWORD"]


def shot(d, name):
    shot_as(d, "console", name)


def login(d, name, password):
    d.find_element(By.ID, "name").clear()
    d.find_element(By.ID, "name").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "login-button").click()


def rows(d):
    return [[c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in d.find_elements(By.CSS_SELECTOR, "#devices tbody tr")]


def run(d):
    d.get(URL)
    wait(d, "the login view did not appear", lambda: visible(d, "login"))
    shot(d, "login")

    # The administrator: every device, and the audit log checked whole.
    login(d, "ana.admin", ADMIN_PW)
    wait(d, "the admin's devices did not appear",
         lambda: visible(d, "devices-view") and len(rows(d)) == 2)
    teams = sorted(r[1] for r in rows(d))
    if teams != ["Tim Sjenica", "Tim Tutin"]:
        raise Failed("the admin sees %r" % teams)
    red = [r for r in rows(d) if r[0].startswith("Red")]
    if len(red) != 1 or red[0][1] != "Tim Sjenica" or "never seen" not in red[0][0]:
        raise Failed("the red devices are %r" % red)
    shot(d, "devices-admin")
    # A one-time enrolment token, shown once.
    d.find_element(By.CSS_SELECTOR, "#enrol summary").click()
    d.find_element(By.ID, "t-team").send_keys("Tim Raška")
    d.find_element(By.ID, "t-muni").send_keys("Raška")
    d.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait(d, "no enrolment token was shown", lambda: text(d, "token").startswith("FS1-"))
    shot(d, "enrol-token")
    # Sjenica's laptop is reported lost: revoke it, with a reason.
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#devices tbody tr")
           if "Tim Sjenica" in r.text][0]
    row.find_element(By.CSS_SELECTOR, "button").click()
    alert = d.switch_to.alert
    alert.send_keys("reported lost")
    alert.accept()
    wait(d, "the revocation was not confirmed",
         lambda: "Revoked the device of Tim Sjenica" in text(d, "action-result"))
    wait(d, "the device is not shown revoked",
         lambda: any("revoked: reported lost" in c for r in rows(d) for c in r))
    d.find_element(By.ID, "tab-audit").click()
    wait(d, "the audit log did not appear",
         lambda: visible(d, "audit-view")
         and len(d.find_elements(By.CSS_SELECTOR, "#audit tbody tr")) > 0)
    d.find_element(By.ID, "verify").click()
    wait(d, "the log was not checked", lambda: text(d, "verify-result").startswith("Intact"))
    shot(d, "audit")
    d.find_element(By.ID, "logout").click()
    wait(d, "logging out did not return to the login", lambda: visible(d, "login"))

    # Wrong passwords, then a pause that the right one does not lift.
    for _ in range(3):
        login(d, "ana.admin", "pogrešna-lozinka")
        wait(d, "no message for a wrong password",
             lambda: "Wrong account name or password" in text(d, "login-error"))
        d.execute_script("document.getElementById('login-error').textContent = ''")
    login(d, "ana.admin", "pogrešna-lozinka")
    wait(d, "no pause after failed logins",
         lambda: "Too many failed logins" in text(d, "login-error"))
    shot(d, "login-paused")

    # The viewer for Tutin: Tutin's device only.
    login(d, "tutin.viewer", VIEWER_PW)
    wait(d, "the viewer's devices did not appear", lambda: visible(d, "devices-view"))
    wait(d, "the viewer's device list", lambda: len(rows(d)) == 1)
    if "Tim Tutin" not in rows(d)[0] or any("Sjenica" in c for r in rows(d) for c in r):
        raise Failed("the viewer sees %r" % rows(d))
    if "tutin.viewer (viewer)" not in text(d, "who"):
        raise Failed("the header says %r" % text(d, "who"))
    shot(d, "devices-viewer")
    d.find_element(By.ID, "logout").click()
    wait(d, "logging out did not return to the login", lambda: visible(d, "login"))
    keys = d.execute_script("return Object.keys(localStorage).concat(Object.keys(sessionStorage));")
    if keys:
        raise Failed("the browser keeps %r" % keys)


if __name__ == "__main__":
    sys.exit(main(run, lambda: browser(1300, 900)))
