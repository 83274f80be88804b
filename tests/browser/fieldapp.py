"""fieldapp.py - the field app in headless Chromium, as a field worker
uses it (run by tests/cli/test_browser_fieldapp.sh, which sets the scene:
an enrolled laptop's agent with a household waiting, HQ down).

Every wait is for something to appear on the page, with a limit that
FS_TEST_TIMEOUT_SCALE stretches; none is a fixed sleep.  Screenshots of
each main view go to FS_SHOTS, for a person to look at.
"""
import json
import os
import subprocess
import sys

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["FS_APP_URL"]
SHOTS = os.environ["FS_SHOTS"]
SCALE = int(os.environ.get("FS_TEST_TIMEOUT_SCALE", "1") or 1)
with open(os.environ["FS_APP_PASSPHRASE_FILE"], encoding="utf-8") as f:
    PASSPHRASE = f.readline().rstrip("\n")


class Failed(Exception):
    pass


def browser():
    opt = webdriver.ChromeOptions()
    opt.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-extensions", "--disable-sync",
              "--window-size=1200,900", "--user-data-dir=" + os.environ["FS_PROFILE"],
              # Nothing leaves the machine: the app needs no network.
              "--disable-background-networking", "--disable-component-update"):
        opt.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opt)


def wait(d, what, cond, secs=30):
    try:
        # A list the page redraws while it is read is read again.
        return WebDriverWait(d, secs * SCALE, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(
                                 lambda _: cond())
    except TimeoutException:
        raise Failed("%s (waited %d s)" % (what, secs * SCALE)) from None


def visible(d, eid):
    els = d.find_elements(By.ID, eid)
    return els and els[0].is_displayed()


def text(d, eid):
    return d.find_element(By.ID, eid).text


def shot(d, name):
    path = os.path.join(SHOTS, "fieldapp-%s.png" % name)
    d.save_screenshot(path)
    print("screenshot", path)


def agent_status():
    out = subprocess.run([os.environ["FIELDSYNC"], "status", "--json"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise Failed("fieldsync status exited %d: %s" % (out.returncode, out.stderr.strip()))
    return json.loads(out.stdout).get("agent", {})


def click(d, what, by, sel):
    """Click what sel finds, again if the page redrew it meanwhile."""
    def attempt():
        try:
            d.find_element(by, sel).click()
            return True
        except StaleElementReferenceException:
            return False
    wait(d, "could not click " + what, attempt)


def result_names(d):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, "#results .name")]


def search(d, words):
    box = d.find_element(By.ID, "q")
    box.clear()
    if words:
        box.send_keys(words)
    else:
        # clear() fires no input event: type and erase a letter.
        box.send_keys("x")
        box.send_keys("\b")


def unlock(d, passphrase):
    box = d.find_element(By.ID, "passphrase")
    box.clear()
    box.send_keys(passphrase)
    d.find_element(By.ID, "unlock-button").click()


def run(d):
    d.get(URL)
    # Locked: the page asks for the passphrase, in Serbian (Latin) first.
    wait(d, "the unlock view did not appear", lambda: visible(d, "unlock"))
    if d.find_element(By.TAG_NAME, "h1").text != "Otključavanje":
        raise Failed("the unlock view is not in Serbian Latin: %r" % d.find_element(By.TAG_NAME, "h1").text)
    shot(d, "unlock")

    unlock(d, "pogrešna lozinka")
    wait(d, "no message for a wrong passphrase",
         lambda: "nije ispravna lozinka" in text(d, "unlock-error"))
    shot(d, "unlock-wrong")
    if d.find_element(By.ID, "passphrase").get_attribute("value"):
        raise Failed("the passphrase field kept what was typed")

    unlock(d, PASSPHRASE)
    wait(d, "the home view did not appear after unlocking", lambda: visible(d, "home"))
    if agent_status().get("locked") is not False:
        raise Failed("the agent is not unlocked after the page unlocked it")
    # HQ is down: one household's changes wait, and the page says why in
    # plain words.
    wait(d, "the waiting changes were not shown",
         lambda: "čeka slanje" in text(d, "sync-waiting") or "čekaju slanje" in text(d, "sync-waiting"))
    wait(d, "HQ being unreachable was not shown",
         lambda: "Centrala trenutno nije dostupna" in text(d, "sync-problem"))
    shot(d, "home-offline")

    # The caseload: every household, then the search across scripts.
    wait(d, "the caseload did not list the 3 households",
         lambda: len(result_names(d)) == 3)
    search(d, "djordjevic")
    wait(d, "Latin 'djordjevic' did not find the Cyrillic 'Ђорђевић Драгана'",
         lambda: result_names(d) == ["Ђорђевић Драгана"])
    search(d, "Јованов")
    wait(d, "Cyrillic 'Јованов' did not find the Latin 'Jovanović Ana'",
         lambda: result_names(d) == ["Jovanović Ana"])
    shot(d, "caseload-search")
    search(d, "")
    d.find_element(By.CSS_SELECTOR, "#f-visit option[value='never']").click()
    wait(d, "the never-visited filter did not leave the 2 unvisited households",
         lambda: sorted(result_names(d)) == ["Petrović Marko", "Ђорђевић Драгана"])
    d.find_element(By.CSS_SELECTOR, "#f-visit option[value='']").click()
    wait(d, "the caseload did not come back", lambda: len(result_names(d)) == 3)

    # A household's page: its fields, its visit, who recorded it.
    click(d, "Ana's household", By.XPATH,
          "//ul[@id='results']//button[.//span[text()='Jovanović Ana']]")
    wait(d, "the household page did not open", lambda: visible(d, "household"))
    if text(d, "hh-name") != "Jovanović Ana":
        raise Failed("the household page shows %r" % text(d, "hh-name"))
    wait(d, "the visit was not listed", lambda: "Needs assessment" in text(d, "hh-visits")
         or "Procena potreba" in text(d, "hh-visits"))
    if "Uneto na ovom računaru" not in text(d, "hh-visits"):
        raise Failed("the visit does not say it was recorded here: %r" % text(d, "hh-visits"))
    if "Izbeglica" not in text(d, "hh-fields"):
        raise Failed("the status is not shown in words: %r" % text(d, "hh-fields"))
    shot(d, "household")
    d.find_element(By.ID, "back").click()
    wait(d, "Back did not return to the caseload", lambda: visible(d, "home"))

    # Cyrillic, remembered across a reload; the session survives it.
    d.find_element(By.CSS_SELECTOR, "[data-lang='sr-Cyrl']").click()
    wait(d, "the page did not switch to Cyrillic",
         lambda: d.find_element(By.ID, "sync-now").text == "Синхронизуј сада")
    d.refresh()
    wait(d, "the home view did not come back after a reload", lambda: visible(d, "home"))
    wait(d, "the language was not remembered",
         lambda: d.find_element(By.ID, "lock-now").text == "Закључај")
    wait(d, "the problem is not shown in Cyrillic",
         lambda: "Централа тренутно није доступна" in text(d, "sync-problem"))
    shot(d, "home-cyrillic")

    # HQ comes back; "Sync now" sends everything, and the page says so.
    d.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
    hq_log = open(os.environ["FS_HQ_LOG"], "w", encoding="utf-8")
    hq = subprocess.Popen([os.environ["FS_HQ_BIN"], "-c", os.environ["FS_HQ_CONF"], "serve",
                           "--listen", "127.0.0.1:" + os.environ["FS_HQ_PORT"]],
                          stderr=hq_log)
    try:
        d.find_element(By.ID, "sync-now").click()
        wait(d, "the page never said everything was sent",
             lambda: text(d, "sync-waiting") == "Everything has been sent to HQ.", secs=90)
        wait(d, "the problem stayed on the page", lambda: not visible(d, "sync-problem"))
        wait(d, "no last successful sync shown",
             lambda: text(d, "sync-last").startswith("Last successful sync:"))
        shot(d, "home-synced")
    finally:
        hq.terminate()
        hq.wait()
        hq_log.close()

    # Only the language is in localStorage; no personal data.
    keys = d.execute_script("return Object.keys(localStorage);")
    if keys != ["fieldsync.lang"]:
        raise Failed("localStorage holds %r" % keys)
    if "?" in d.current_url or "#" in d.current_url:
        raise Failed("the URL carries data: %s" % d.current_url)

    # A phone-sized window still shows everything, in reach of a thumb.
    d.set_window_size(420, 860)
    wide = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth;")
    if wide > 0:
        raise Failed("at 420 px wide the page scrolls sideways by %d px" % wide)
    shot(d, "home-narrow")
    d.set_window_size(1200, 900)

    # Lock now: one click, and the agent holds no key.
    d.find_element(By.ID, "lock-now").click()
    wait(d, "the unlock view did not come back after Lock now", lambda: visible(d, "unlock"))
    if agent_status().get("locked") is not True:
        raise Failed("the agent is not locked after Lock now")
    # The old session is gone: a reload still asks for the passphrase.
    d.refresh()
    wait(d, "a reload after Lock now did not ask for the passphrase", lambda: visible(d, "unlock"))


def main():
    d = browser()
    try:
        run(d)
    except Failed as e:
        try:
            shot(d, "failure")
        finally:
            print("FAIL:", e, file=sys.stderr)
        return 1
    finally:
        d.quit()
    print("browser: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
