from websync.core.frames import Binary, Frame, Text

def apply_mask(data: bytes | bytearray | memoryview, key: bytes | bytearray | memoryview, /) -> bytes: ...
def encode_frame(first: int, payload: bytes | bytearray | memoryview, key: bytes | None, /) -> bytes: ...
def parse_header(data: bytes | bytearray | memoryview, position: int, /) -> tuple[int, int, int, int] | None: ...
def parse_messages(
    text_type: type[Text],
    binary_type: type[Binary],
    data: bytes | bytearray | memoryview,
    position: int,
    max_size: int | None,
    masked: bool,
    events: list[Frame],
    /,
) -> int: ...
