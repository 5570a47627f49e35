"""QR images (PNG, SVG) and personalised posters for channel codes.

The QR encodes ``qr_content``: for an Official Account code the ``url`` WeChat returned (the
real QR content), for a WeCom code the contact way's ``qr_code`` link (WeCom hands out an
image link, not the QR's content: a redrawn QR opens that image, where WeChat's long-press
「识别二维码」 adds the staff member; print the original from ``qr_code`` where possible), and for
an unsynced code a placeholder URL naming the state.

Posters are drawn with Pillow. Fonts: the first CJK font found on the system (``fc-list
:lang=zh``, then common Noto / WenQuanYi paths) so Chinese titles render; without one,
Pillow's built-in default font is used, which has no CJK glyphs (Chinese shows as boxes) —
install ``fonts-noto-cjk`` on the server for real posters.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from pathlib import Path

import segno
from PIL import Image, ImageColor, ImageDraw, ImageFont

POSTER_SIZE = (750, 1334)  # a phone screen at 2x: what WeChat shows full-screen
QR_SIDE = 420
CJK_FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/PingFang.ttc",
)
MAX_CONTENT = 1000


def _qr(content: str) -> segno.QRCode:
    if not content or len(content) > MAX_CONTENT:
        raise ValueError("QR content must be 1-1000 characters")
    # Error correction M survives a small logo or a slightly damaged print.
    return segno.make_qr(content, error="m")


def qr_png(content: str, *, scale: int = 10, border: int = 4) -> bytes:
    out = io.BytesIO()
    _qr(content).save(out, kind="png", scale=scale, border=border)
    return out.getvalue()


def qr_svg(content: str, *, scale: int = 10, border: int = 4) -> bytes:
    out = io.BytesIO()
    _qr(content).save(out, kind="svg", scale=scale, border=border, xmldecl=True, svgns=True)
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def cjk_font_path() -> str | None:
    """A font file with Chinese glyphs, or None."""
    if shutil.which("fc-list"):
        try:
            listed = subprocess.run(
                ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=5, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        for line in sorted(listed.splitlines()):
            path = line.split(":", 1)[0].strip()
            if path and Path(path).is_file():
                return path
    return next((p for p in CJK_FONT_PATHS if Path(p).is_file()), None)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = cjk_font_path()
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    return ImageFont.load_default(size)


def _centered(draw: ImageDraw.ImageDraw, y: int, text: str, size: int, fill: str) -> None:
    if not text:
        return
    font = _font(size)
    left, _, right, _ = draw.textbbox((0, 0), text, font=font)
    draw.text(((POSTER_SIZE[0] - (right - left)) // 2, y), text, font=font, fill=fill)


def poster_png(
    content: str,
    *,
    title: str,
    staff_name: str = "",
    store_name: str = "",
    background: str = "#F6E7D8",
    background_image: bytes | None = None,
    ink: str = "#222222",
) -> bytes:
    """A 750×1334 PNG: background colour (or an image, scaled to cover), the title, the QR on
    a white card, and who the customer will meet (staff, store)."""
    try:
        colour = ImageColor.getrgb(background)
    except ValueError:
        colour = ImageColor.getrgb("#F6E7D8")
    poster = Image.new("RGB", POSTER_SIZE, colour)
    if background_image:
        with Image.open(io.BytesIO(background_image)) as raw:
            cover = raw.convert("RGB")
            ratio = max(POSTER_SIZE[0] / cover.width, POSTER_SIZE[1] / cover.height)
            cover = cover.resize((round(cover.width * ratio) + 1, round(cover.height * ratio) + 1))
            poster.paste(cover.crop((0, 0, *POSTER_SIZE)))
    draw = ImageDraw.Draw(poster)
    _centered(draw, 150, title[:20], 56, ink)
    card = (POSTER_SIZE[0] - QR_SIDE) // 2 - 30
    draw.rounded_rectangle((card, 330, POSTER_SIZE[0] - card, 330 + QR_SIDE + 60), radius=24, fill="white")
    with Image.open(io.BytesIO(qr_png(content, scale=8, border=2))) as qr:
        poster.paste(qr.convert("RGB").resize((QR_SIDE, QR_SIDE), Image.Resampling.NEAREST), (card + 30, 360))
    _centered(draw, 880, staff_name[:20], 40, ink)
    _centered(draw, 950, store_name[:30], 32, ink)
    _centered(draw, 1180, "长按识别二维码添加", 28, ink)
    out = io.BytesIO()
    poster.save(out, format="PNG", optimize=True)
    return out.getvalue()
