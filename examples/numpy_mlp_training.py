"""Training a small MLP in plain NumPy with fastact's gradients.

    python examples/numpy_mlp_training.py

A 64-128-10 network with a PReLU hidden layer (one learned slope per unit)
and a log-softmax output, trained with mini-batch SGD with momentum on the
digits data set bundled with scikit-learn (no download).  The forward pass
uses fastact's fused bias (``fa.prelu(X @ W1, a, bias=b1)``); the backward
pass uses ``fa.log_softmax_backward`` and ``fa.prelu_backward``, which also
returns the gradient of the slopes.  Prints the loss and accuracy as it
converges.
"""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import fastact as fa

EPOCHS, BATCH, LR, MOMENTUM = 30, 64, 0.05, 0.9


def main():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
    rng = np.random.default_rng(0)
    n_in, n_hidden, n_out = X.shape[1], 128, 10
    params = {
        "W1": (rng.normal(size=(n_in, n_hidden)) * np.sqrt(2 / n_in)).astype(np.float32),
        "b1": np.zeros(n_hidden, np.float32),
        "a": np.full(n_hidden, 0.25, np.float32),  # PReLU slopes, learned
        "W2": (rng.normal(size=(n_hidden, n_out)) * np.sqrt(1 / n_hidden)).astype(np.float32),
        "b2": np.zeros(n_out, np.float32),
    }
    velocity = {k: np.zeros_like(v) for k, v in params.items()}

    def forward(Xb):
        z1 = Xb @ params["W1"]
        h = fa.prelu(z1, params["a"], axis=1, bias=params["b1"])
        z2 = h @ params["W2"]
        logp = fa.log_softmax(z2 + params["b2"], axis=1)
        return z1, h, logp

    def evaluate(Xe, ye):
        logp = forward(Xe)[2]
        return -logp[np.arange(len(ye)), ye].mean(), (logp.argmax(axis=1) == ye).mean()

    print(f"digits: {len(X_train)} training, {len(X_test)} test images; "
          f"fastact {fa.__version__} ({fa.get_backend()})")
    print(f"{'epoch':>5}  {'train loss':>10}  {'test loss':>9}  {'test acc':>8}  {'mean slope':>10}")
    for epoch in range(1, EPOCHS + 1):
        order = rng.permutation(len(X_train))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            Xb, yb = X_train[idx], y_train[idx]
            z1, h, logp = forward(Xb)
            # dL/dlogp of the mean negative log-likelihood
            g = np.zeros_like(logp)
            g[np.arange(len(yb)), yb] = -1.0 / len(yb)
            dz2 = fa.log_softmax_backward(g, logp, axis=1)
            grads = {"W2": h.T @ dz2, "b2": dz2.sum(axis=0)}
            dh = dz2 @ params["W2"].T
            dz1, grads["a"] = fa.prelu_backward(dh, z1, params["a"], axis=1, bias=params["b1"])
            grads["W1"] = Xb.T @ dz1
            grads["b1"] = dz1.sum(axis=0)
            for k in params:
                velocity[k] *= MOMENTUM
                velocity[k] -= LR * grads[k]
                params[k] += velocity[k]
        if epoch in (1, 2, 5) or epoch % 10 == 0:
            train_loss, _ = evaluate(X_train, y_train)
            test_loss, test_acc = evaluate(X_test, y_test)
            print(f"{epoch:5d}  {train_loss:10.4f}  {test_loss:9.4f}  {test_acc:8.3f}  "
                  f"{params['a'].mean():10.3f}")
    if test_acc < 0.9:
        raise SystemExit(f"did not converge: test accuracy {test_acc:.3f}")


if __name__ == "__main__":
    main()
