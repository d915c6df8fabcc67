"""Tiny Keras models the tests share (built in milliseconds; TensorFlow is imported on first use).

``convnet`` is the small Sequential of the inspection tests (conv_a, conv_b, a head), ``book_nested``
the book's shape (a conv base nested in a Sequential), ``branchy`` a functional model with an
Inception-style branch and a residual addition, ``loaded`` wraps a model the way the app's loader does,
``pretrained_like_base`` is the two-conv "pretrained" base the registered test bases build.
"""

from __future__ import annotations


def convnet(name: str = "two_conv", widths: tuple[int, ...] = (6, 10), classes: int = 2, *, seed: int = 3,
            size: int = 32, pool: bool = False, flatten: bool = False, head: str = "out"):
    """Rescaling, one 3×3 ReLU conv per width (``conv_a``, ``conv_b``, …; a max-pool after the first
    with ``pool``), then Flatten or global average pooling and a softmax head (sigmoid for one class)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = [keras.Input((size, size, 3)), keras.layers.Rescaling(1 / 255.0, name="rescale")]
    for index, width in enumerate(widths):
        layers.append(keras.layers.Conv2D(width, 3, activation="relu", name=f"conv_{'abcdef'[index]}"))
        if pool and index == 0:
            layers.append(keras.layers.MaxPooling2D(name="pool"))
    layers.append(keras.layers.Flatten(name="flatten") if flatten else keras.layers.GlobalAveragePooling2D())
    activation = "sigmoid" if classes == 1 else "softmax"
    layers.append(keras.layers.Dense(classes, activation=activation, name=head))
    return keras.Sequential(layers, name=name)


def book_nested(*, rescale: bool = False, seed: int = 2, widths: tuple[int, int] = (4, 8),
                names: tuple[str, str, str] = ("block1_conv", "block1_pool", "block2_conv")):
    """The book's shape: a functional conv base ``tiny_base`` (conv, pool, conv — ``names``) inside
    a Sequential with a Flatten + sigmoid head."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp) if rescale else inp
    x = keras.layers.Conv2D(widths[0], 3, activation="relu", name=names[0])(x)
    x = keras.layers.MaxPooling2D(name=names[1])(x)
    x = keras.layers.Conv2D(widths[1], 3, activation="relu", name=names[2])(x)
    base = keras.Model(inp, x, name="tiny_base")
    return keras.Sequential([keras.Input((32, 32, 3)), base, keras.layers.Flatten(name="flatten"),
                             keras.layers.Dense(1, activation="sigmoid", name="out")], name="book")


def branchy():
    """stem → (branch_1x1 ‖ branch_3x3) → mix → res_conv, + shortcut from stem → residual_add → head."""
    import keras

    layers = keras.layers
    inp = keras.Input((24, 24, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inp)
    a = layers.Conv2D(4, 1, padding="same", name="branch_1x1")(x)
    b = layers.Conv2D(4, 3, padding="same", name="branch_3x3")(x)
    cat = layers.Concatenate(name="mix")([a, b])
    y = layers.Conv2D(8, 3, padding="same", name="res_conv")(cat)
    short = layers.Conv2D(8, 1, name="shortcut")(x)
    z = layers.Add(name="residual_add")([y, short])
    out = layers.Dense(2, activation="softmax", name="head")(layers.GlobalAveragePooling2D(name="gap")(z))
    return keras.Model(inp, out, name="branchy")


def loaded(model, class_names=None, *, kind: str = "file", input_size: int | None = None, source: str | None = None):
    """``model`` as ``engine.models.loading.LoadedModel`` (what ``context.set_model`` takes)."""
    from engine.models.loading import LoadedModel

    return LoadedModel(model=model, class_names=class_names, kind=kind, input_size=input_size, label=model.name,
                       source=source or f"{model.name}.keras")


def pretrained_like_base(name: str, size: int, *, seed: int, first_pool: int, preprocess):
    """A random conv base shaped like a pretrained one: ``input_layer`` → ``preprocess(keras)`` (a
    Rescaling or Normalization layer) → conv1 → bn1 → pool1 (``first_pool``) → conv2 → pool2 (4),
    convs of 8 3×3 ReLU filters with Glorot weights of ``seed``."""
    from engine.tf_runtime import keras

    k = keras()
    init = k.initializers.GlorotUniform(seed=seed)
    inputs = k.Input(shape=(size, size, 3), name="input_layer")
    x = preprocess(k)(inputs)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same", kernel_initializer=init, name="conv1")(x)
    x = k.layers.BatchNormalization(name="bn1")(x)
    x = k.layers.MaxPooling2D(first_pool, name="pool1")(x)
    x = k.layers.Conv2D(8, 3, activation="relu", padding="same", kernel_initializer=init, name="conv2")(x)
    x = k.layers.MaxPooling2D(4, name="pool2")(x)
    return k.Model(inputs, x, name=name)
