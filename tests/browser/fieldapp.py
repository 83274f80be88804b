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

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Failed, browser, main, shot as shot_as, text, visible, wait  # noqa: E402

URL = os.environ["FS_APP_URL"]
with open(os.environ["FS_APP_PASSPHRASE_FILE"], encoding="utf-8") as f:
    PASSPHRASE = f.readline().rstrip("\n")


def status():
    out = subprocess.run([os.environ["FIELDSYNC"], "status", "--json"], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise Failed("fieldsync status exited %d: %s" % (out.returncode, out.stderr.strip()))
    return json.loads(out.stdout)


def shot(d, name):
    shot_as(d, "fieldapp", name)


def agent_status():
    return status().get("agent", {})


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


def question(d, name):
    """The record view's question for field name (the first, in a row)."""
    return d.find_element(By.CSS_SELECTOR, "#rec-fields .q[data-name='%s']" % name)


def shown(d, name):
    els = d.find_elements(By.CSS_SELECTOR, "#rec-fields .q[data-name='%s']" % name)
    return bool(els) and els[0].is_displayed()


def set_value(d, element, value):
    """Set an input as a person's typing would, with its input event (a
    date input's typed form depends on the browser's locale)."""
    d.execute_script("arguments[0].value = arguments[1];"
                     "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                     element, value)


def select(d, name, value):
    el = question(d, name).find_element(By.CSS_SELECTOR, ":scope > select")
    el.find_element(By.CSS_SELECTOR, "option[value='%s']" % value).click()


def saves(d):
    return int(d.find_element(By.ID, "rec-saved").get_attribute("data-saves") or "0")


def wait_saved(d, after):
    """Until a save later than count after has ended and none is due."""
    wait(d, "the draft was not saved",
         lambda: saves(d) > after
         and d.find_element(By.ID, "rec-saved").get_attribute("data-state") == "saved")


def error_of(d, name):
    return question(d, name).find_element(By.CSS_SELECTOR, ":scope > .err").text


def kill_browser(d):
    """kill -9 the browser itself, as a crash or a pulled plug would."""
    pid = d.service.process.pid
    subprocess.run(["pkill", "-KILL", "-P", str(pid)], check=False)
    d.service.process.kill()
    d.service.process.wait()


def record_visit(d):
    """Record a visit with form logic; the browser is killed half-way and
    the draft comes back.  Returns the new browser."""
    pending = status().get("pending_changes")
    click(d, "Record a visit", By.ID, "record-visit")
    wait(d, "the visit form did not open", lambda: visible(d, "record"))
    if text(d, "rec-title") != "Posete" or "Jovanović Ana" not in text(d, "rec-for"):
        raise Failed("the visit form is titled %r for %r" % (text(d, "rec-title"), text(d, "rec-for")))
    # Skip logic: the stage of works is asked for construction only.
    if shown(d, "construction_stage") or shown(d, "assistance"):
        raise Failed("questions for a visit type were shown before it was chosen")
    n = saves(d)
    select(d, "visit_type", "housing_construction")
    wait(d, "the stage of works was not asked for a construction visit",
         lambda: shown(d, "construction_stage"))
    # Choice filter: only the assistance that fits construction.
    offered = lambda: [l.text for l in question(d, "assistance").find_elements(
        By.CSS_SELECTOR, ".answer label") if l.is_displayed()]
    wait(d, "the assistance offered was not filtered by the visit type",
         lambda: offered() == ["Popravka krova", "Prozori", "Izolacija", "Peć za grejanje"])
    select(d, "construction_stage", "roof")
    question(d, "assistance").find_element(By.XPATH, ".//label[span='Prozori']").click()
    # A constraint with its message in the worker's language.
    set_value(d, question(d, "visit_date").find_element(By.CSS_SELECTOR, "input"), "2099-01-01")
    wait(d, "a visit in the future was not refused in Serbian",
         lambda: error_of(d, "visit_date") == "Datum posete ne može biti u budućnosti.")
    d.execute_script("window.scrollTo(0, 0);")
    shot(d, "record-logic")
    # A repeat group: two people present, one written in Cyrillic.
    click(d, "Add a row", By.CSS_SELECTOR, ".q[data-name='people_present'] > .add-row")
    wait(d, "no row was added", lambda: shown(d, "person_name"))
    question(d, "person_name").find_element(By.TAG_NAME, "input").send_keys("Јована Петровић")
    select(d, "role", "household_member")
    d.find_element(By.CSS_SELECTOR, "#rec-fields .q[data-name='notes'] textarea").send_keys(
        "Prozori zamenjeni; кров у току")
    wait_saved(d, n)
    if error_of(d, "person_name") or error_of(d, "notes"):
        raise Failed("good answers were marked wrong")
    # Drafts stay on the device: nothing new waits to be sent.
    if status().get("pending_changes") != pending:
        raise Failed("a draft was queued for HQ")
    shot(d, "record-draft")

    # The browser dies; nothing typed is lost.
    kill_browser(d)
    d = browser()
    d.get(URL)
    wait(d, "the unlock view did not appear after the crash", lambda: visible(d, "unlock"))
    unlock(d, PASSPHRASE)
    wait(d, "the draft was not listed after the crash",
         lambda: visible(d, "drafts") and "Posete" in text(d, "draft-list"))
    click(d, "the draft", By.CSS_SELECTOR, "#draft-list button")
    wait(d, "the draft did not open", lambda: visible(d, "record") and shown(d, "person_name"))
    if (question(d, "person_name").find_element(By.TAG_NAME, "input").get_attribute("value")
            != "Јована Петровић"
            or "кров у току" not in d.find_element(By.CSS_SELECTOR, ".q[data-name='notes'] textarea")
            .get_attribute("value")
            or not question(d, "construction_stage").is_displayed()
            or "Jovanović Ana" not in text(d, "rec-for")):
        raise Failed("the draft came back without what was typed")
    wait(d, "the refused date was not marked again", lambda: error_of(d, "visit_date") != "")

    # A row left empty, and a next visit before this one: Finish refuses
    # and marks both, in English now.
    d.find_element(By.CSS_SELECTOR, "[data-lang='en']").click()
    n = saves(d)
    click(d, "Add a row", By.CSS_SELECTOR, ".q[data-name='people_present'] > .add-row")
    set_value(d, question(d, "visit_date").find_element(By.CSS_SELECTOR, "input"), "2026-11-25")
    set_value(d, question(d, "next_visit").find_element(By.CSS_SELECTOR, "input"), "2026-11-01")
    wait_saved(d, n)
    d.find_element(By.ID, "rec-finish").click()
    wait(d, "Finish did not refuse an incomplete form",
         lambda: visible(d, "rec-problem") and "not complete" in text(d, "rec-problem"))
    rows = d.find_elements(By.CSS_SELECTOR, ".q[data-name='people_present'] fieldset.row")
    if len(rows) != 2 or rows[1].find_element(By.CSS_SELECTOR, ".q .err").text != "This answer is required.":
        raise Failed("the empty row was not marked as required")
    if error_of(d, "next_visit") != "The next visit must come after this one.":
        raise Failed("the next visit's constraint was not shown: %r" % error_of(d, "next_visit"))
    if error_of(d, "visit_date"):
        raise Failed("the corrected date is still marked")
    shot(d, "record-refused")

    # A photo: a file that lies about its type is refused in words; a
    # camera's JPEG is taken, the agent saying what it kept.
    photo = question(d, "photo")
    attached = photo.find_element(By.CSS_SELECTOR, ".attached")
    if attached.text != "No file attached.":
        raise Failed("an empty photo question says %r" % attached.text)
    photo.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(os.environ["FS_LIE_PHOTO"])
    wait(d, "a file that is not a photo was not refused",
         lambda: attached.text.startswith("The file was not taken"))
    if "not a JPEG, PNG or PDF file by its content" not in attached.text:
        raise Failed("the refusal does not say why: %r" % attached.text)
    photo.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(os.environ["FS_PHOTO"])
    wait(d, "the photo was not taken", lambda: attached.text.startswith("Attached: JPEG, "))
    d.execute_script("arguments[0].scrollIntoView();", photo)
    shot(d, "record-photo")
    n = saves(d)
    rows[1].find_element(By.CSS_SELECTOR, ".remove-row").click()
    set_value(d, question(d, "next_visit").find_element(By.CSS_SELECTOR, "input"), "2027-02-01")
    wait_saved(d, n)
    d.find_element(By.ID, "rec-finish").click()
    wait(d, "the finished visit did not show on the household page",
         lambda: visible(d, "household") and "Housing construction" in text(d, "hh-visits"))
    if "Attached: JPEG, " not in text(d, "hh-visits"):
        raise Failed("the visit's photo is not shown: %r" % text(d, "hh-visits"))
    wait(d, "the photo waiting to be sent is not said",
         lambda: text(d, "sync-files").startswith("Attached files waiting to be sent: 1 ("))
    if visible(d, "drafts"):
        raise Failed("the finished draft is still listed")
    if status().get("pending_changes") <= pending:
        raise Failed("the finished visit is not waiting to be sent")
    shot(d, "household-recorded")
    d.find_element(By.CSS_SELECTOR, "[data-lang='sr-Latn']").click()
    return d


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
    d = record_visit(d)
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
        # The other team's visit came down with its team's name.
        search(d, "Ana")
        click(d, "Ana's household", By.XPATH,
              "//ul[@id='results']//button[.//span[text()='Jovanović Ana']]")
        wait(d, "the other team's visit was not shown with its team",
             lambda: visible(d, "household")
             and "Recorded by team Tim Preševo" in text(d, "hh-visits"))
        if "Recorded on this laptop · Tim Vranje" not in text(d, "hh-visits"):
            raise Failed("this laptop's visits do not name its team: %r" % text(d, "hh-visits"))
        d.execute_script("document.getElementById('hh-visits').scrollIntoView();")
        shot(d, "household-teams")
        d.find_element(By.ID, "back").click()
        wait(d, "Back did not return to the caseload", lambda: visible(d, "home"))
        search(d, "")
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

    # Locked from outside while the page is open (as the idle timer locks
    # it): the page starts again from nothing, and says why.
    subprocess.run([os.environ["FIELDSYNC"], "lock"], capture_output=True, check=True)
    wait(d, "the page did not show that the agent locked",
         lambda: visible(d, "unlock")
         and "Locked after a time without use" in text(d, "unlock-error"))
    page = d.find_element(By.TAG_NAME, "body").get_attribute("textContent")
    if "Jovanović" in page or "Vranje" in page:
        raise Failed("the page locked by the agent still holds what it showed")
    shot(d, "locked-by-agent")
    unlock(d, PASSPHRASE)
    wait(d, "the home view did not come back after unlocking", lambda: visible(d, "home"))

    # Lock now: one click, and the agent holds no key.
    d.find_element(By.ID, "lock-now").click()
    wait(d, "the unlock view did not come back after Lock now", lambda: visible(d, "unlock"))
    if agent_status().get("locked") is not True:
        raise Failed("the agent is not locked after Lock now")
    # Nothing the unlocked page showed is left in it, hidden or not (the
    # text is not printed: it holds names).
    page = d.find_element(By.TAG_NAME, "body").get_attribute("textContent")
    if "Jovanović" in page or "Vranje" in page:
        raise Failed("the locked page still holds what the unlocked one showed")
    # The old session is gone: a reload still asks for the passphrase.
    d.refresh()
    wait(d, "a reload after Lock now did not ask for the passphrase", lambda: visible(d, "unlock"))


if __name__ == "__main__":
    sys.exit(main(run, browser))
