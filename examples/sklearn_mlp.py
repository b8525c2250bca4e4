"""scikit-learn's MLPClassifier, its forward pass run again through fastact.

    python examples/sklearn_mlp.py

Trains ``sklearn.neural_network.MLPClassifier`` on the digits data set that
ships with scikit-learn (1797 8x8 images, no download) with each hidden
activation fastact shares with it (relu, tanh, logistic = sigmoid), then
computes the same forward pass with the trained weights: one matmul per
layer and fastact's fused bias + activation written in place
(``fa.relu(X @ W, bias=b, out=Z)``), and softmax at the end.  Prints that the
predictions are equal and the measured time of both forward passes.
"""

import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import fastact as fa

#: scikit-learn's name of each hidden activation -> fastact's function.
ACTIVATIONS = {"relu": fa.relu, "tanh": fa.tanh, "logistic": fa.sigmoid}


def fastact_forward(model, X):
    """Class probabilities of ``model`` for ``X``, each layer fused in place."""
    hidden = ACTIVATIONS[model.activation]
    a = X
    last = len(model.coefs_) - 1
    for i, (W, b) in enumerate(zip(model.coefs_, model.intercepts_)):
        z = a @ W
        if i < last:
            a = hidden(z, bias=b, out=z)  # activation(z + b), in place, no temporary
        else:
            z += b
            a = fa.softmax(z, axis=1, out=z)
    return a


def best_time(f, repeat=7):
    f()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    # a larger batch for the timing: the test set repeated
    X_big = np.tile(X_test, (20, 1))
    print(f"digits: {len(X_train)} training and {len(X_test)} test images; "
          f"timing on {len(X_big)} rows; fastact {fa.__version__} ({fa.get_backend()}, "
          f"{fa.get_num_threads()} threads)")
    print(f"{'activation':<10} {'test acc':>8}  {'same predictions':>16}  {'max |dp|':>9}  "
          f"{'sklearn ms':>10}  {'fastact ms':>10}")
    ok = True
    for name in ACTIVATIONS:
        with warnings.catch_warnings():  # a short training is enough for this comparison
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = MLPClassifier(hidden_layer_sizes=(64,), activation=name, max_iter=40,
                                  random_state=0).fit(X_train, y_train)
        p_sk = model.predict_proba(X_big)
        p_fa = fastact_forward(model, X_big)
        same = np.array_equal(model.classes_[p_fa.argmax(axis=1)], model.predict(X_big))
        ok &= same
        t_sk = best_time(lambda: model.predict_proba(X_big))
        t_fa = best_time(lambda: fastact_forward(model, X_big))
        print(f"{name:<10} {model.score(X_test, y_test):8.3f}  {str(same):>16}  "
              f"{np.abs(p_sk - p_fa).max():9.1e}  {t_sk * 1e3:10.2f}  {t_fa * 1e3:10.2f}")
    if not ok:
        raise SystemExit("fastact's predictions differ from scikit-learn's")


if __name__ == "__main__":
    main()
