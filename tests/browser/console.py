"""console.py - HQ's console in headless Chromium, as an administrator
and a viewer use it (run by tests/cli/test_browser_console.sh, which sets
the scene: HQ with two accounts; laptops in Sjenica and Tutin; a conflict
and a quarantined change in Tutin; a stuck queue in Sjenica; and HQ's
clock on a seam, FS_HQ_CLOCK, that this test moves).

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
CLOCK = os.environ["FS_HQ_CLOCK"]
CONFLICT = os.environ["FS_CONFLICT_RECORD"]
QUARANTINED = os.environ["FS_QUARANTINED_RECORD"]
# What the viewer for Tutin must never be shown: Sjenica, its people,
# and the id of a Sjenica household a Tutin laptop wrote to.
SJENICA = ("Sjenica", "Бошковић", "Ђурић", os.environ["FS_SJENICA_RECORD"])
CHARTS = ("visits-by-week", "visit-types", "households-by-status", "merged-by-day")


def shot(d, name):
    shot_as(d, "console", name)


def login(d, name, password):
    d.find_element(By.ID, "name").clear()
    d.find_element(By.ID, "name").send_keys(name)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "login-button").click()


def rows(d, table="devices"):
    return [[c.text for c in r.find_elements(By.TAG_NAME, "td")]
            for r in d.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table)]


def by_team(d):
    return {r[1]: r for r in rows(d)}


def fetch(d, method, path, body=None, csrf=True):
    """The answer to a request made from the page, as the page would make
    it (its cookie; its CSRF token unless csrf is False): [status, text]."""
    return d.execute_async_script("""
        const [method, path, body, withToken, done] = arguments;
        (async () => {
          const s = await (await fetch('/api/session', {cache: 'no-store'})).json();
          const h = {'Content-Type': 'application/json'};
          if (withToken) h['X-CSRF-Token'] = s.csrf;
          const r = await fetch(path, {method: method, headers: h, cache: 'no-store',
                                       body: body === null ? undefined : body});
          done([r.status, await r.text()]);
        })().catch((e) => done([0, String(e)]));""", method, path, body, csrf)


def tab(d, name, view):
    d.find_element(By.ID, "tab-" + name).click()
    wait(d, "the %s view did not appear" % name, lambda: visible(d, view))


def run(d):
    d.get(URL)
    wait(d, "the login view did not appear", lambda: visible(d, "login"))
    shot(d, "login")

    # ---- the administrator ---------------------------------------------
    login(d, "ana.admin", ADMIN_PW)
    wait(d, "the admin's devices did not appear",
         lambda: visible(d, "devices-view") and len(rows(d)) == 5)
    teams = sorted(by_team(d))
    if teams != ["Tim Sjenica", "Tim Sjenica 2", "Tim Tutin", "Tim Tutin 2", "Tim Tutin 3"]:
        raise Failed("the admin sees %r" % teams)
    red = [r for r in rows(d) if r[0].startswith("Red")]
    if len(red) != 1 or red[0][1] != "Tim Sjenica" or "never seen" not in red[0][0]:
        raise Failed("the red devices are %r" % red)
    # The stuck queue: HQ refuses its sets, the laptop says so; not red yet.
    stuck = by_team(d)["Tim Sjenica 2"]
    if stuck[0] != "OK" or not stuck[4].startswith("5") or stuck[5] != "refused":
        raise Failed("the stuck laptop shows %r" % stuck)
    shot(d, "devices-admin")

    # A day passes on HQ's clock (the seam, not a sleep): the refused
    # changes have now waited more than [console] red_backlog_hours.
    with open(CLOCK, "w") as f:
        f.write("+25h\n")
    tab(d, "devices", "devices-view")
    wait(d, "the stuck laptop did not turn red",
         lambda: by_team(d)["Tim Sjenica 2"][0] == "Red: changes waiting to be sent for too long")
    if by_team(d)["Tim Tutin"][0] != "OK":
        raise Failed("a laptop seen a day ago is %r" % by_team(d)["Tim Tutin"][0])
    if "2 red" not in text(d, "devices-summary"):
        raise Failed("the summary says %r" % text(d, "devices-summary"))
    shot(d, "devices-backlog-red")
    with open(CLOCK, "w") as f:
        f.write("+0\n")

    # A request without this session's CSRF token is refused.
    status, body = fetch(d, "POST", "/api/devices/revoke", '{"device":"00","reason":"x"}',
                         csrf=False)
    if status != 403 or '"csrf"' not in body:
        raise Failed("a POST without the CSRF token got %r %r" % (status, body))

    # The conflict: keep the value that lost (Tim Tutin's 5, the earlier).
    tab(d, "conflicts", "conflicts-view")
    wait(d, "the conflict is not listed", lambda: any(CONFLICT in r[0] for r in rows(d, "conflicts")))
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#conflicts tbody tr") if CONFLICT in r.text][0]
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    if "Tim Tutin 2" not in cells[2] + cells[3] or "household_size" != cells[1]:
        raise Failed("the conflict row is %r" % cells)
    side = "a" if cells[2].startswith("5") else "b"
    shot(d, "conflicts-open")
    row.find_element(By.XPATH, ".//button[text()='Keep %s']" % side).click()
    wait(d, "the decision was not confirmed",
         lambda: text(d, "conflicts-summary").startswith("Decided"))
    wait(d, "the conflict is not shown decided",
         lambda: any("Kept %s by ana.admin" % side in r[5] for r in rows(d, "conflicts")))
    shot(d, "conflicts-resolved")

    # The quarantined status: released with a reason.
    tab(d, "quarantine", "quarantine-view")
    wait(d, "the quarantined change is not listed",
         lambda: any(QUARANTINED in r[3] for r in rows(d, "quarantine")))
    shot(d, "quarantine")
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#quarantine tbody tr")
           if QUARANTINED in r.text][0]
    row.find_element(By.XPATH, ".//button[text()='Release']").click()
    alert = d.switch_to.alert
    alert.send_keys("a status the programme added")
    alert.accept()
    wait(d, "the release was not confirmed", lambda: text(d, "quarantine-summary").startswith("Released."))
    wait(d, "the released change is still listed",
         lambda: not any(QUARANTINED in r[3] for r in rows(d, "quarantine")))

    # The programme view: HQ's four charts, each drawn.
    tab(d, "programme", "programme-view")
    for c in CHARTS:
        wait(d, "the chart %s was not drawn" % c, lambda: d.execute_script(
            "const i = document.getElementById(arguments[0]);"
            "return i.complete && i.naturalWidth > 300;", "chart-" + c))
    shot(d, "programme")
    status, csv = fetch(d, "GET", "/api/programme/visit-types.csv")
    if status != 200 or not csv.startswith('"visit type","count"'):
        raise Failed("the admin's visit types CSV: %r %r" % (status, csv))

    # A one-time enrolment token, shown once.
    tab(d, "devices", "devices-view")
    d.find_element(By.CSS_SELECTOR, "#enrol summary").click()
    d.find_element(By.ID, "t-team").send_keys("Tim Raška")
    d.find_element(By.ID, "t-muni").send_keys("Raška")
    d.find_element(By.CSS_SELECTOR, "#token-form button").click()
    wait(d, "no enrolment token was shown", lambda: text(d, "token").startswith("FS1-"))
    shot(d, "enrol-token")
    # Sjenica's laptop is reported lost: revoke it, with a reason.
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#devices tbody tr")
           if r.find_elements(By.TAG_NAME, "td")[1].text == "Tim Sjenica"][0]
    row.find_element(By.CSS_SELECTOR, "button").click()
    alert = d.switch_to.alert
    alert.send_keys("reported lost")
    alert.accept()
    wait(d, "the revocation was not confirmed",
         lambda: "Revoked the device of Tim Sjenica" in text(d, "action-result"))
    wait(d, "the device is not shown revoked",
         lambda: any("revoked: reported lost" in c for r in rows(d) for c in r))
    tab(d, "audit", "audit-view")
    wait(d, "the audit log did not appear",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "#audit tbody tr")) > 0)
    d.find_element(By.ID, "verify").click()
    wait(d, "the log was not checked", lambda: text(d, "verify-result").startswith("Intact"))
    shot(d, "audit")
    d.find_element(By.ID, "logout").click()
    wait(d, "logging out did not return to the login", lambda: visible(d, "login"))

    # ---- five wrong passwords (the default [console] login_tries), then a
    # pause that the right one does not lift -----------------------------
    for _ in range(5):
        login(d, "ana.admin", "pogrešna-lozinka")
        wait(d, "no message for a wrong password",
             lambda: "Wrong account name or password" in text(d, "login-error"))
        d.execute_script("document.getElementById('login-error').textContent = ''")
    login(d, "ana.admin", ADMIN_PW)
    wait(d, "no pause after failed logins",
         lambda: "Too many failed logins" in text(d, "login-error"))
    shot(d, "login-paused")

    # ---- the viewer for Tutin: Tutin only, everywhere ------------------
    login(d, "tutin.viewer", VIEWER_PW)
    wait(d, "the viewer's devices did not appear", lambda: visible(d, "devices-view"))
    wait(d, "the viewer's device list", lambda: len(rows(d)) == 3)
    if sorted(by_team(d)) != ["Tim Tutin", "Tim Tutin 2", "Tim Tutin 3"]:
        raise Failed("the viewer sees %r" % rows(d))
    if "tutin.viewer (viewer)" not in text(d, "who"):
        raise Failed("the header says %r" % text(d, "who"))
    if d.find_elements(By.CSS_SELECTOR, "#devices tbody button"):
        raise Failed("the viewer is offered an action")
    # Nothing the administrator's session showed is left in the page.
    # (The page's text is not printed: it could hold a token.)
    if any(s in d.find_element(By.TAG_NAME, "body").get_attribute("textContent")
           for s in SJENICA):
        raise Failed("the viewer's page holds what the administrator's session showed")
    shot(d, "devices-viewer")
    tab(d, "conflicts", "conflicts-view")
    wait(d, "the viewer's conflicts", lambda: len(rows(d, "conflicts")) == 1)
    if d.find_elements(By.CSS_SELECTOR, "#conflicts tbody button"):
        raise Failed("the viewer is offered a decision")
    tab(d, "quarantine", "quarantine-view")
    tab(d, "programme", "programme-view")
    for c in CHARTS:
        wait(d, "the viewer's chart %s was not drawn" % c, lambda: d.execute_script(
            "const i = document.getElementById(arguments[0]);"
            "return i.complete && i.naturalWidth > 300;", "chart-" + c))
    shot(d, "programme-viewer")
    # Nothing of Sjenica in any view the viewer opened, nor in any answer
    # it can get: the pages' data, the CSV downloads, the pictures.
    if any(s in d.find_element(By.TAG_NAME, "body").get_attribute("textContent")
           for s in SJENICA):
        raise Failed("a viewer's view holds Sjenica's data")
    for path in ["/api/devices", "/api/conflicts", "/api/quarantine"] + \
            ["/api/programme/%s.%s" % (c, x) for c in CHARTS for x in ("csv", "svg")]:
        status, body = fetch(d, "GET", path)
        if status != 200:
            raise Failed("the viewer's %s: %r %r" % (path, status, body))
        if any(s in body for s in SJENICA):
            raise Failed("the viewer's %s shows Sjenica's data" % path)
    status, _ = fetch(d, "GET", "/api/audit")
    if status != 403:
        raise Failed("the viewer read the audit log: %r" % status)
    d.find_element(By.ID, "logout").click()
    wait(d, "logging out did not return to the login", lambda: visible(d, "login"))
    keys = d.execute_script("return Object.keys(localStorage).concat(Object.keys(sessionStorage));")
    if keys:
        raise Failed("the browser keeps %r" % keys)


if __name__ == "__main__":
    sys.exit(main(run, lambda: browser(1300, 900)))
