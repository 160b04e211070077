"""Demo: AutoInit vs Keras's default init on a deep network, layer by layer.

Builds a deep convolutional network (no normalization), initializes one copy
with AutoInit and leaves another with Keras's default (Glorot uniform), feeds
both the same N(0, 1) batch in training mode, and prints for every layer the
variance AutoInit predicted next to the variance measured under each init.

Run: ``python -m experiments.layer_variance_demo`` (``make demo`` runs the
paired sweep of ``experiments.demo`` instead).
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from autoinit_nas import AutoInit  # noqa: E402


def deep_convnet(blocks=6, filters=32, seed=0):
    """A 40-odd layer plain CNN: conv stacks, max pooling, dropout, a residual merge."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 3), name="image")
    hidden = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="stem")(inputs)
    for block in range(blocks):
        branch = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                     name=f"b{block}_conv1")(hidden)
        branch = keras.layers.Conv2D(filters, 3, padding="same", name=f"b{block}_conv2")(branch)
        hidden = keras.layers.Add(name=f"b{block}_add")([hidden, branch])
        hidden = keras.layers.Activation("tanh" if block % 2 else "relu", name=f"b{block}_act")(hidden)
        if block in (1, 3):
            hidden = keras.layers.MaxPooling2D(2, name=f"b{block}_pool")(hidden)
        if block == 4:
            hidden = keras.layers.Dropout(0.1, name=f"b{block}_dropout")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    hidden = keras.layers.Dense(256, activation="selu", name="fc1")(hidden)
    hidden = keras.layers.Dense(256, activation="gelu", name="fc2")(hidden)
    outputs = keras.layers.Dense(64, name="head")(hidden)
    return keras.Model(inputs, outputs, name="deep_convnet")


def per_layer_variances(model, batch):
    """Measured variance of every layer's output (training mode)."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers])
    outputs = probe(batch, training=True)
    return {layer.name: float(np.var(keras.ops.convert_to_numpy(output))) for layer, output in zip(layers, outputs)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=6, help="residual blocks (default 6)")
    parser.add_argument("--batch", type=int, default=256, help="noise batch size (default 256)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    default_model = deep_convnet(args.blocks, seed=args.seed)
    autoinit_model = deep_convnet(args.blocks, seed=args.seed)
    start = time.perf_counter()
    autoinit_model, estimates = AutoInit(weight_init_config={"seed": args.seed}).initialize_model(
        autoinit_model, return_estimates=True
    )
    seconds = time.perf_counter() - start

    batch = np.random.default_rng(args.seed).standard_normal((args.batch, 32, 32, 3)).astype("float32")
    measured_auto = per_layer_variances(autoinit_model, batch)
    measured_default = per_layer_variances(default_model, batch)

    print(f"{autoinit_model.name}: {len(measured_auto)} layers, "
          f"{autoinit_model.count_params():,} parameters; AutoInit took {seconds:.3f} s")
    print(f"{'layer':<14}{'class':<20}{'predicted':>11}{'AutoInit':>11}{'default':>11}")
    for name, variance in measured_auto.items():
        layer = autoinit_model.get_layer(name)
        print(f"{name:<14}{type(layer).__name__:<20}{estimates[name][1]:>11.4g}"
              f"{variance:>11.4g}{measured_default[name]:>11.4g}")
    final = list(measured_auto)[-1]
    print(f"\nfinal-layer variance: AutoInit {measured_auto[final]:.3g}, "
          f"Keras default {measured_default[final]:.3g} (target 1)")


if __name__ == "__main__":
    main()
