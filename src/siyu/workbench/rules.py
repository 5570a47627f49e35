"""Pure rules for Moments posts (朋友圈): which materials may go together, and the
``add_moment_task`` request body. No database here."""

from __future__ import annotations

from typing import Any

from siyu.core.errors import InvalidInput

TEXT_MAX = 2000  # characters, add_moment_task text.content
IMAGES_MAX = 9
SENDERS_MAX = 100_000  # visible_range.sender_list.user_list
VIDEO_EXTENSIONS = (".mp4",)


def moment_kind(material_kind: str, file_name: str = "") -> str | None:
    """What a content.Material is as a Moments attachment: ``image``, ``video`` (an .mp4 file)
    or ``link``; ``None`` when it cannot be one (text, mini-program, other files)."""
    if material_kind in ("image", "link"):
        return material_kind
    if material_kind == "file" and file_name.lower().endswith(VIDEO_EXTENSIONS):
        return "video"
    return None


def check_text(text: str) -> str:
    text = text.strip()
    if len(text) > TEXT_MAX:
        raise InvalidInput(
            f"朋友圈文字最多 {TEXT_MAX} 字（现在 {len(text)} 字）/ text is longer than {TEXT_MAX} characters",
            field="text",
        )
    if "\x00" in text:
        raise InvalidInput("文字含有非法字符 / text contains a NUL character", field="text")
    return text


def check_attachment_kinds(kinds: list[str | None]) -> None:
    """WeCom takes 9 images, or 1 video, or 1 link: never a mix."""
    if not kinds:
        return
    if None in kinds:
        raise InvalidInput(
            "朋友圈附件只能是图片、视频（mp4）或链接 / attachments must be images, an mp4 video or a link",
            field="attachments",
        )
    if set(kinds) == {"image"}:
        if len(kinds) > IMAGES_MAX:
            raise InvalidInput(
                f"图片最多 {IMAGES_MAX} 张（现在 {len(kinds)} 张）/ at most {IMAGES_MAX} images", field="attachments"
            )
        return
    if len(kinds) > 1:
        raise InvalidInput(
            "只能选 1 个视频或 1 个链接，且不能与图片混用 / one video or one link, not mixed with images",
            field="attachments",
        )


def moment_body(
    text: str, attachments: list[dict[str, Any]], sender_userids: list[str], tag_ids: list[str]
) -> dict[str, Any]:
    """The ``add_moment_task`` request (attachments already in WeCom's shape, with media ids)."""
    body: dict[str, Any] = {}
    if text:
        body["text"] = {"content": text}
    if attachments:
        body["attachments"] = attachments
    visible: dict[str, Any] = {"sender_list": {"user_list": sender_userids}}
    if tag_ids:
        visible["external_contact_list"] = {"tag_list": tag_ids}
    body["visible_range"] = visible
    return body
