"""The feed's prebuilt frames are what a WebSocket client parses back to the payload."""

from __future__ import annotations

from collections.abc import Generator

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from inventory.feed.frames import frame_writer, text_frame


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser: Generator[None, None, Frame] = Frame.parse(
        reader.read_exact, mask=False, max_size=None, extensions=[]
    )
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 420, 65535, 65536, 200_000])
def test_a_text_frame_parses_back_to_its_payload_whatever_its_length(size: int) -> None:
    payload = b'{"kind":"event"}'.ljust(size, b" ")[:size]
    frame = parse(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)


def test_two_frames_one_after_the_other_parse_as_two_messages() -> None:
    data = text_frame(b'{"a":1}') + text_frame(b'{"b":2}')
    first = parse(data)
    second = parse(data[len(text_frame(b'{"a":1}')) :])
    assert (first.data, second.data) == (b'{"a":1}', b'{"b":2}')


def test_without_the_server_extension_there_is_no_writer() -> None:
    assert frame_writer({"type": "websocket"}) is None
    assert frame_writer({"extensions": {"websocket.http.response": {}}}) is None
