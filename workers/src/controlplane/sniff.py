"""Is an upload a video container? Decided from its first bytes (a ranged read), before a job is queued.

Only the containers the GPU pods open are accepted (their probe names the same ones, and stays the
final check: a header that looks right can still hide a damaged or audio-only file). Written by hand
rather than with a library: the signatures are a handful of fixed bytes, and a pure-Python sniffing
package would bring hundreds of types the Worker must not accept anyway.
"""

from __future__ import annotations

HEAD_BYTES = 1024  # enough for every signature below (an MPEG-TS needs three 188-byte packets)

# The first box of an ISO media file (MP4, MOV, 3GP): QuickTime files may start with any of these.
ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}

# What common non-video uploads are, for the reason given back.
OTHER_KINDS = [
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"ID3", "MP3 audio"),
    (b"fLaC", "FLAC audio"), (b"\x1f\x8b", "a gzip archive"),
]


def container_of(head: bytes) -> str | None:
    """The container format of a file starting with `head`, or None when it is none the pods read."""
    if len(head) >= 8 and head[4:8] in ISO_BOXES:
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"
    if head.startswith(b"OggS"):
        return "ogg"
    if _mpegts(head):
        return "mpegts"
    return None


def _mpegts(head: bytes) -> bool:
    """Sync bytes every 188 bytes (TS) or every 192 after a 4-byte timestamp (M2TS, camcorders)."""
    return any(len(head) >= offset + 2 * size + 1 and all(head[offset + i * size] == 0x47 for i in range(3))
               for offset, size in ((0, 188), (4, 192)))


def describe(head: bytes) -> str:
    """What a file that is not a video container seems to be, for the user."""
    if head[:4] == b"RIFF":
        return f"a RIFF {head[8:12].decode('latin-1').strip() or 'file'} file"
    for magic, kind in OTHER_KINDS:
        if head.startswith(magic):
            return kind
    try:
        (head[:-3] or head).decode("utf-8")  # the read may end inside a character
        return "text" if b"\0" not in head else "unrecognised data"
    except UnicodeDecodeError:
        return "unrecognised data"
