"""Input preprocessing on the device: uint8 images → floats in [0, 1], with optional augmentation.

Augmentations run inside the jitted train step, one random draw per image:

- `flip`: mirror left-right with probability 1/2 (not for digits or text, whose mirror image is
  another symbol).
- `crop`: pad by an eighth of the side (at least 1 pixel) with zeros, then cut a random window of
  the original size: small random shifts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def to_float(images: jax.Array) -> jax.Array:
    return images.astype(jnp.float32) / 255.0


def augment(key: jax.Array, images: jax.Array, kinds: tuple[str, ...]) -> jax.Array:
    """Apply `kinds` to a batch of float images (N, H, W, C)."""
    flip_key, crop_key = jax.random.split(key)
    if "crop" in kinds:
        images = random_crop(crop_key, images)
    if "flip" in kinds:
        images = random_flip(flip_key, images)
    return images


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
    flip = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flip, images[:, :, ::-1, :], images)


def random_crop(key: jax.Array, images: jax.Array) -> jax.Array:
    _, height, width, channels = images.shape
    pad_h, pad_w = max(1, height // 8), max(1, width // 8)
    padded = jnp.pad(images, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
    top_key, left_key = jax.random.split(key)
    tops = jax.random.randint(top_key, (images.shape[0],), 0, 2 * pad_h + 1)
    lefts = jax.random.randint(left_key, (images.shape[0],), 0, 2 * pad_w + 1)

    def cut(image, top, left):
        return jax.lax.dynamic_slice(image, (top, left, 0), (height, width, channels))

    return jax.vmap(cut)(padded, tops, lefts)
