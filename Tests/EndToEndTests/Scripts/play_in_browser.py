"""Plays a title through the player page in headless Chromium (Debian's browser, driven by
Playwright) the way a viewer would: sign in, pick the title, press Play. Succeeds when the video
element has fired `playing` and its currentTime has passed the target with no media error; also
checks the poster and the scrubbing thumbnails, and writes a screenshot.

usage: play_in_browser.py PLAYER_URL EMAIL PASSWORD TITLE_ID SCREENSHOT [SECONDS]
Prints one JSON object; exits 1 with the reason on failure."""
import asyncio
import json
import sys

from playwright.async_api import async_playwright

RECORDER = """
window.__media = { events: [], errors: [] };
document.addEventListener('DOMContentLoaded', () => {
  const video = document.getElementById('video');
  for (const name of ['loadedmetadata', 'playing', 'waiting', 'seeked', 'ended', 'error']) {
    video.addEventListener(name, () => {
      window.__media.events.push(name);
      if (name === 'error' && video.error) window.__media.errors.push(video.error.code + ' ' + video.error.message);
    });
  }
});
"""


async def main(url, email, password, title_id, screenshot, seconds):
    result = {"url": url}
    async with async_playwright() as p:
        # An https:// page of `marquee dev --tls` has a certificate of its local CA: Chromium is
        # told to accept it, as the banner suggests.
        insecure = ["--ignore-certificate-errors"] if url.startswith("https://") else []
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"] + insecure)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1000})
            console = []
            page.on("console", lambda message: console.append(message.type + ": " + message.text))
            failed_requests = []
            page.on("response", lambda r: failed_requests.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            await page.add_init_script(RECORDER)
            await page.goto(url)
            result["secure_context"] = await page.evaluate("window.isSecureContext")
            await page.fill("#email", email)
            await page.fill("#password", password)
            await page.click("#sign-in-button")
            card = page.locator(f'#titles li[data-title-id="{title_id}"]')
            await card.wait_for(timeout=15000)
            result["title_card"] = await card.locator("h3").inner_text()
            await card.locator("button.play").click()
            try:
                await page.wait_for_function(
                    "(target) => { const v = document.getElementById('video');"
                    " return window.__media.errors.length > 0 || (window.__media.events.includes('playing') && v.currentTime > target); }",
                    arg=seconds, timeout=90000, polling=250)
            except Exception as error:  # noqa: BLE001 - reported below with the page's state
                result["wait_error"] = str(error).splitlines()[0]
            state = await page.evaluate(
                "() => { const v = document.getElementById('video');"
                " return { currentTime: v.currentTime, duration: v.duration, paused: v.paused, readyState: v.readyState,"
                " videoWidth: v.videoWidth, videoHeight: v.videoHeight, poster: v.poster, src: v.currentSrc,"
                " status: document.getElementById('status').dataset.state, statusText: document.getElementById('status').textContent,"
                " events: window.__media.events, errors: window.__media.errors }; }")
            result.update(state)
            # Scrubbing: hovering the position bar shows the thumbnail sprite for that time.
            box = await page.locator("#seek").bounding_box()
            if box:
                await page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
                await page.wait_for_timeout(300)
                result["preview"] = await page.evaluate(
                    "() => { const p = document.getElementById('preview'); const i = document.getElementById('preview-image');"
                    " return { visible: !p.hidden, image: i.style.backgroundImage, width: i.style.width, time: document.getElementById('preview-time').textContent }; }")
            result["poster_status"] = await page.evaluate("async (u) => (await fetch(u)).status", state["poster"]) if state["poster"] else None
            if result.get("preview", {}).get("image"):
                sprite = result["preview"]["image"][5:-2]
                result["sprite_status"] = await page.evaluate("async (u) => (await fetch(u)).status", sprite)
            await page.screenshot(path=screenshot, full_page=True)
            result["console"] = console[-20:]
            result["failed_requests"] = failed_requests[-20:]
        finally:
            await browser.close()
    print(json.dumps(result))
    ok = (not result["errors"] and "playing" in result["events"] and result["currentTime"] > seconds)
    if not ok:
        print(f"playback did not reach {seconds} s: {json.dumps(result)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6]) if len(sys.argv) > 6 else 5.0))
