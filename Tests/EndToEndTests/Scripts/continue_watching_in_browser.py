"""Resumes a title from the player page's "Continue watching" row in headless Chromium (Debian's
browser, driven by Playwright): open BASE_URL/player/, sign in, wait for the row to offer TITLE_ID
(reloading now and then: analytics may take a moment to record the last session), click it, and
wait until the video plays from about where the viewer stopped: it has seeked, currentTime >= the
position the row lists minus 2 s, and it has moved on by half a second since (so it plays, not
just sits there), with no media error.

usage: continue_watching_in_browser.py BASE_URL EMAIL PASSWORD TITLE_ID [--timeout 60] [--screenshot PATH]
Prints one JSON line {"title_id", "resume_position", "current_time", "status", ...}; exits 1 with
the reason on stderr on failure."""
import argparse
import asyncio
import json
import sys
import time

from playwright.async_api import async_playwright

RECORDER = """
window.__media = { events: [], errors: [], seekedAt: null };
document.addEventListener('DOMContentLoaded', () => {
  const video = document.getElementById('video');
  for (const name of ['loadedmetadata', 'playing', 'seeked', 'error']) {
    video.addEventListener(name, () => {
      window.__media.events.push(name);
      if (name === 'seeked') window.__media.seekedAt = video.currentTime;
      if (name === 'error' && video.error) window.__media.errors.push(video.error.code + ' ' + video.error.message);
    });
  }
});
"""


class Failure(Exception):
    """A check that failed: the message says which."""


async def main(args):
    url = args.base_url.rstrip("/") + "/player/"
    deadline = time.monotonic() + args.timeout
    result = {"url": url, "title_id": args.title_id}
    console_errors, failed_requests = [], []
    failure = None
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = None
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: console_errors.append(m.text)
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda e: console_errors.append("uncaught: " + str(e)))
            page.on("response", lambda r: failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.add_init_script(RECORDER)
            await page.goto(url)
            await page.fill("#email", args.email)
            await page.fill("#password", args.password)
            await page.click("#sign-in-button")
            await page.locator("#titles li, #catalog-error:not(:empty), #sign-in-error:not(:empty)").first.wait_for(timeout=15000)
            if await page.locator("#sign-in-error").inner_text():
                raise Failure("sign-in failed: " + await page.locator("#sign-in-error").inner_text())

            item = page.locator(f'[data-testid="continue-watching"] [data-testid="resume-{args.title_id}"]')
            last_reload = time.monotonic()
            while not await item.is_visible():
                if time.monotonic() > deadline:
                    row = await page.evaluate(
                        "() => [...document.querySelectorAll('#resume-list li')].map((li) => li.dataset.titleId)")
                    raise Failure(f"the continue-watching row never offered {args.title_id} within {args.timeout:.0f} s (it offers {row})")
                # The page reads the history once, at sign-in: reloading (the tokens are kept) reads it again.
                if time.monotonic() - last_reload > 5:
                    await page.reload()
                    await page.locator("#titles li, #catalog-error:not(:empty), #sign-in-error:not(:empty)").first.wait_for(timeout=15000)
                    last_reload = time.monotonic()
                await page.wait_for_timeout(500)

            result["resume_position"] = float(await item.get_attribute("data-position"))
            result["row_text"] = (await item.inner_text()).replace("\n", " · ")
            await item.locator("button").click()
            target = max(0.0, result["resume_position"] - 2)
            remaining = max(1000, (deadline - time.monotonic()) * 1000) + 30000  # playback's own time on top
            try:
                await page.wait_for_function(
                    "(target) => { const v = document.getElementById('video');"
                    " return window.__media.errors.length > 0"
                    " || (window.__media.events.includes('playing') && !v.paused && v.currentTime >= target"
                    "     && (target === 0 || (window.__media.seekedAt !== null && v.currentTime >= window.__media.seekedAt + 0.5))); }",
                    arg=target, timeout=remaining, polling=250)
            except Exception as error:  # noqa: BLE001 - the state below says what happened
                failure = "the video did not play from the resume position: " + str(error).splitlines()[0]
        except Failure as error:
            failure = str(error)
        except Exception as error:  # noqa: BLE001 - reported with what was seen so far
            failure = str(error).splitlines()[0]
        finally:
            if page is not None:
                try:
                    result.update(await page.evaluate(
                        "() => { const v = document.getElementById('video');"
                        " return { current_time: v.currentTime, duration: v.duration, paused: v.paused,"
                        " status: document.getElementById('status').dataset.state, now_playing: document.getElementById('now-playing').textContent,"
                        " seeked_at: window.__media ? window.__media.seekedAt : null,"
                        " events: window.__media ? window.__media.events : [], media_errors: window.__media ? window.__media.errors : [] }; }"))
                    if args.screenshot:
                        await page.screenshot(path=args.screenshot, full_page=True)
                except Exception as error:  # noqa: BLE001
                    failure = failure or "cannot read the page: " + str(error).splitlines()[0]
            await browser.close()
    result["console_errors"] = console_errors
    result["failed_requests"] = failed_requests[-20:]
    if not failure and result.get("media_errors"):
        failure = f"media error: {result['media_errors']}"
    if not failure and result.get("current_time", 0) < result.get("resume_position", 0) - 2:
        failure = f"playing at {result.get('current_time')} s, not from {result.get('resume_position')} s"
    if not failure and console_errors:
        failure = f"JavaScript errors on the page: {console_errors}"
    print(json.dumps(result))
    if failure:
        print(f"continue_watching_in_browser: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("title_id")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--screenshot")
    asyncio.run(main(parser.parse_args()))
