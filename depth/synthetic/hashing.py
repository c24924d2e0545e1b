"""Counter-based random numbers and per-pixel hashes.

Random numbers come from a counter-based hash (`Draws`): the i-th number drawn for a frame is
a pure function of the frame's key and i, so frame k is the same whether rendered alone or in
any batch, on any device, and no generator state is carried between calls.
"""

from __future__ import annotations

import torch
from torch import Tensor

# ----------------------------------------------------------------------------- random numbers

MASK32 = 0xFFFFFFFF


def mix32(x: Tensor) -> Tensor:
    """A 32-bit integer hash (Mueller's) of int64 values in [0, 2**32), or of int32 values
    holding the same 32 bits: the result has the input's dtype and the same bits either way.

    int64 products stay < 2**59 and are masked; int32 products wrap, which is the same modulo
    2**32, and int32 is several times faster on CPU (per-pixel hashes use it). The `& 0xFFFF`
    after each shift makes int32's arithmetic shift a logical one.
    """
    for _ in range(2):
        x = (((x >> 16) & 0xFFFF) ^ x) * 0x45D9F3B
        if x.dtype == torch.int64:
            x = x & MASK32
    return ((x >> 16) & 0xFFFF) ^ x


def hash_uniform(x: Tensor) -> Tensor:
    """Uniform floats in [0, 1) from hash values (24 bits, exact in float32; int64 or int32)."""
    return ((x >> 8) & 0xFFFFFF).float() * (1.0 / (1 << 24))


def frame_keys(stream: int, indices: Tensor) -> Tensor:
    """(B,) int64 keys, one per frame: `stream` in the high 32 bits, the frame index in the low.

    Different (stream, index) pairs always give different keys, so disjoint streams (the
    train, val and test splits) can never produce the same frame.
    """
    if not 0 <= stream < 2**31:
        raise ValueError(f"stream must be in [0, 2**31), got {stream}")
    return (indices.long() & MASK32) | (stream << 32)


class Draws:
    """Counter-based random numbers for a batch of frames.

    Every call takes the next n numbers of each frame's sequence: number i of the frame with
    key k is mix32(mix32(lo(k) ^ mix32(i)) ^ hi(k)), with lo and hi hashes of the key's
    halves. The generator draws in the same order for every frame (it has no data-dependent
    branches), so a frame's scene depends only on its key. Numbers are hashed BLOCK at a time
    (one vectorised step for many draws); that changes no value.
    """

    BLOCK = 512

    def __init__(self, keys: Tensor) -> None:
        self.keys = keys
        self.lo = mix32(keys & MASK32)[:, None]
        self.hi = mix32(((keys >> 32) & MASK32) ^ 0x9E3779B9)[:, None]
        self.count = 0
        self._block = self._hash(0, 0)
        self._uniforms = hash_uniform(self._block)  # the block as uniforms, made once for many draws
        self._block_start = 0

    @property
    def batch(self) -> int:
        return self.lo.shape[0]

    @property
    def device(self) -> torch.device:
        return self.lo.device

    def _hash(self, start: int, n: int) -> Tensor:
        i = torch.arange(start, start + n, device=self.device, dtype=torch.int64)
        return mix32(mix32(self.lo ^ mix32(i)) ^ self.hi)

    def _take(self, n: int) -> int:
        """Advance by n numbers; returns their offset in the current block."""
        offset = self.count - self._block_start
        if offset + n > self._block.shape[1]:
            self._block_start, offset = self.count, 0
            self._block = self._hash(self.count, max(n, self.BLOCK))
            self._uniforms = hash_uniform(self._block)
        self.count += n
        return offset

    def bits(self, n: int) -> Tensor:
        """(B, n) int64 hash values in [0, 2**32): numbers count .. count + n - 1."""
        offset = self._take(n)
        return self._block[:, offset:offset + n]

    def uniform(self, low: float | Tensor = 0.0, high: float | Tensor = 1.0, n: int | None = None) -> Tensor:
        """Uniform floats in [low, high) (hash_uniform of the numbers): shape (B,) or, with n, (B, n)."""
        offset = self._take(1 if n is None else n)
        u = self._uniforms[:, offset] if n is None else self._uniforms[:, offset:offset + n]
        return low + (high - low) * u

    def triangular(self, low: float, high: float, n: int | None = None) -> Tensor:
        """The mean of two uniforms: values in [low, high), most often near the middle."""
        return 0.5 * (self.uniform(low, high, n) + self.uniform(low, high, n))

    def chance(self, p: float | Tensor) -> Tensor:
        """(B,) bool, True with probability p (a float or a (B,) tensor)."""
        return self.uniform() < p

    def choice(self, probs: Tensor) -> Tensor:
        """(B,) int64 index drawn from per-frame probabilities (B, K) or shared ones (K,)."""
        cumulative = torch.cumsum(probs, -1)
        cumulative = cumulative / cumulative[..., -1:]
        u = self.uniform()[:, None]
        return (u >= cumulative).sum(-1).clamp(max=probs.shape[-1] - 1)

    def index(self, k: int) -> Tensor:
        """(B,) int64 uniform in 0..k-1."""
        return (self.uniform() * k).long().clamp(max=k - 1)


GOLDEN = -0x61C8864F  # 0x9E3779B1 (2**32 / the golden ratio) as a signed 32-bit integer


def halves(h: Tensor) -> tuple[Tensor, Tensor]:
    """Two independent uniforms in [0, 1) from the low and high 16 bits of a 32-bit hash."""
    return (h & 0xFFFF).float() / 65536.0, ((h >> 16) & 0xFFFF).float() / 65536.0


def frame_seed(key: Tensor, salt: int) -> Tensor:
    """(B,) int32 hashes of the frames' int64 keys, independent for each salt. Per-pixel
    hashes are int32 (see mix32)."""
    return mix32((key & MASK32) ^ mix32(((key >> 32) & MASK32) ^ salt)).int()


def pixel_hash(key: Tensor, salt: int, pixels: int) -> Tensor:
    """(B, P) int32 hashes, one per pixel of each frame, independent for each salt."""
    index = torch.arange(pixels, device=key.device, dtype=torch.int32)
    return mix32(frame_seed(key, salt)[:, None] ^ (index * GOLDEN))
