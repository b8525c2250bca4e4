"""The one description of every activation fastact provides.

Everything else derives from the entries below: the public functions and their
``_backward`` partners (``_api``), their numpydoc docstrings (``_docstrings``),
the NumPy backend's dispatch (``_numpy_backend`` defines ``<name>_forward`` and
``<name>_backward`` by naming convention), the native op table (``setup.py``
generates ``kernels/fa_ops.h`` from :data:`ACTIVATIONS`; the C math lives in
``kernels/fa_math.h`` under the same names), the test parametrisation and the
benchmark list.

Adding an activation is one :class:`Activation` entry here plus its math in
``_numpy_backend.py`` and ``kernels/fa_math.h``.

This module must import with the standard library alone: ``setup.py`` executes
it at build time, before NumPy is importable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Tuple

INF = math.inf
NAN = math.nan

class _Required:
    """Default of a parameter that has none (``prelu``'s weight, ``maxout``'s pieces)."""

    def __repr__(self):
        return "REQUIRED"


REQUIRED = _Required()

#: Kinds of activation; each kind has one generic driver in ``_api``.
ELEMENTWISE = "elementwise"  # y = f(x; params), same shape
PRELU = "prelu"  # leaky_relu with a per-channel learned slope
SOFTMAX = "softmax"  # normalised along one axis
MAXOUT = "maxout"  # max over consecutive groups along one axis


@dataclass(frozen=True)
class Param:
    """One parameter of an activation, after ``x``.

    ``check`` returns True for an acceptable value; ``expect`` says in words
    what is acceptable and goes into the ``ValueError`` message. ``native``
    says how the value reaches the C kernels: ``"p"`` (the next slot of the
    ``double p[4]`` vector), ``"key"`` (the 64-bit generator key), ``"op"``
    (a ``choice`` that selects a compiled op of its own, see
    :attr:`Activation.native_op_names`), or ``None`` (handled by the Python
    driver, e.g. ``axis``).
    """

    name: str
    default: Any
    doc: str
    kind: str = "float"  # float | int | bool | choice | axis | array
    choices: Tuple[str, ...] = ()
    check: Optional[Callable[[Any], bool]] = None
    expect: str = ""
    keyword_only: bool = False
    native: Optional[str] = "p"
    #: A valid value for tests, examples and benchmarks of a required parameter.
    sample: Any = None


@dataclass(frozen=True)
class Special:
    """One row of an activation's special-value table (CONTRACT.md section 3).

    ``grad`` is f'(x) (None where the contract names no value).
    ``params`` overrides defaults for this row.
    """

    x: float
    y: Optional[float] = None
    grad: Optional[float] = None
    params: Tuple[Tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class RootSeries:
    """f' about a root r = hi + lo of f': t*(c1 + t*(c2 + ...)), t = x - r.

    Both backends use it for |x - r| < ROOT_SERIES_RADIUS, where f' computed
    from its formula loses relative accuracy as 1/|x - r|.  Derived with
    mpmath by tools/fit_roots.py, which prints these entries and measures the
    series over the radius (relative error <= 2^-53.8 for every entry, 20 terms
    over the radius 1/8).
    ``params`` selects the variant it belongs to (gelu's two forms).
    """

    hi: float
    lo: float
    coeffs: Tuple[float, ...]
    params: Tuple[Tuple[str, Any], ...] = ()


ROOT_SERIES_RADIUS = 2.0**-3


@dataclass(frozen=True)
class Activation:
    name: str
    kind: str
    summary: str
    formula: str
    params: Tuple[Param, ...] = ()
    #: The backward also accepts the saved forward result ``y=``.
    backward_from_y: bool = False
    #: Piecewise linear: results are exact (CONTRACT.md section 4).
    exact: bool = False
    #: Text for the docstring's Notes on the derivative at kinks.
    kinks: str = ""
    specials: Tuple[Special, ...] = ()
    #: Interval where the function is interesting (not saturated), for tests
    #: and benchmarks. Values outside still get tested for saturation.
    domain: Tuple[float, float] = (-20.0, 20.0)
    #: Roots of f' (where gradient accuracy is absolute, not relative);
    #: defaults to the roots of ``grad_root_series``.
    grad_roots: Tuple[float, ...] = ()
    #: f' about its roots, for the gradient's accuracy near them.
    grad_root_series: Tuple[RootSeries, ...] = ()
    #: Output shown in the docstring's Examples: (forward, backward), as NumPy
    #: prints it, for the calls in ``_docstrings.EXAMPLE_CALLS``; the values
    #: come from mpmath (tools/doc_examples.py) and are run as doctests.
    examples: Tuple[str, str] = ()
    #: How a user would compute the forward without fastact, for the speed
    #: table: (NumPy expression, PyTorch expression, SciPy expression or ""),
    #: in terms of ``x``, the parameters by name, ``np``, ``erf`` (SciPy's or
    #: a vectorised math.erf), ``torch``, ``F`` (torch.nn.functional) and
    #: ``special`` (scipy.special).
    peers: Tuple[str, ...] = ("", "", "")
    #: Checks across parameters: (predicate over the dict of values, message).
    constraints: Tuple[Tuple[Callable[[dict], bool], str], ...] = ()

    def __post_init__(self):
        if not self.grad_roots and self.grad_root_series:
            object.__setattr__(self, "grad_roots",
                               tuple(series.hi for series in self.grad_root_series))

    @property
    def has_native_op(self) -> bool:
        return self.kind == ELEMENTWISE

    @property
    def native_params(self) -> Tuple[Param, ...]:
        return tuple(p for p in self.params if p.native == "p")

    @property
    def native_op_names(self) -> Tuple[str, ...]:
        """The C ops of an element-wise activation: its name, or, with a
        ``native="op"`` choice, one op per choice (the first is the name, the
        others ``<name>_<choice>``).  A form chosen inside the loop body would
        stop GCC vectorising the loop, or make it compute every form."""
        if not self.has_native_op:
            return ()
        form = next((p for p in self.params if p.native == "op"), None)
        if form is None:
            return (self.name,)
        return tuple(self.name if k == 0 else f"{self.name}_{choice}"
                     for k, choice in enumerate(form.choices))

    def native_op(self, values) -> str:
        """The C op that computes this activation with parameter ``values``."""
        for p in self.params:
            if p.native == "op":
                return self.native_op_names[p.choices.index(values[p.name])]
        return self.name


# --------------------------------------------------------------------------
# Parameter constructors shared by several entries

def _positive(v):
    return v > 0


def _finite(v):
    return math.isfinite(v)


def _nonzero(v):
    return v != 0 and math.isfinite(v)


def _alpha(default=1.0, doc="Scale of the negative branch."):
    return Param("alpha", default, doc, check=_finite, expect="a finite number")


def _axis(default=-1):
    return Param("axis", default, "Axis along which the function is applied.",
                 kind="axis", native=None)


#: silu'(x) = swish'(x; beta=1) about its root; swish'(x; beta) = silu'(beta*x).
_SILU_ROOT = RootSeries(-1.2784645427610737, -1.0946994183093437e-16, (
        0.2178117057198001, 0.1466487969969469, 0.018874814223782312, -0.015222655223188032,
        -0.006606589138356696, 0.000126627410081122, 0.0007985218818397998,
        0.00018570724361186496, -4.090534237428612e-05, -2.9733542213263917e-05,
        -2.942631888842464e-06, 2.346029682463866e-06, 8.599695028268575e-07,
        -3.051244750055421e-08, -9.266646309267441e-08, -1.8877622907727957e-08,
        4.619379769031606e-09, 2.9177603026903803e-09, 2.3648315053103244e-10,
        -2.251366201881081e-10))

#: What silu and swish (at its default beta = 1, where the two are
#: bit-identical) share: values, roots, domain, docstring example output.
_SWISH_AT_BETA_1 = dict(
    specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0), Special(0.0, 0.0, 0.5)),
    domain=(-100.0, 40.0),
    grad_root_series=(_SILU_ROOT,),
    examples=('array([-0.        , -0.27363829,  0.        ,  1.22636171,         inf])',
              'array([ 0.        , -0.04129415,  0.5       ,  1.04129415,  1.        ])'),
)

#: SELU's fixed constants (Klambauer et al. 2017), as in CONTRACT.md.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
#: Their product, correctly rounded (SELU_SCALE * SELU_ALPHA in float64 is
#: 1 ULP below it).
SELU_SCALE_ALPHA = 1.7580993408473768599402175208123


# --------------------------------------------------------------------------
# The activations

ACTIVATIONS: Tuple[Activation, ...] = (
    Activation(
        "relu", ELEMENTWISE,
        "Rectified linear unit.",
        "max(0, x)",
        backward_from_y=True, exact=True,
        kinks="relu'(0) = 0, as PyTorch's autograd.",
        specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 0.0), Special(-0.0, 0.0, 0.0)),
        domain=(-4.0, 4.0),
        peers=('np.maximum(x, 0)',
               'F.relu(x)'),
        examples=('array([0. , 0. , 0. , 1.5, inf])',
                  'array([0., 0., 0., 1., 1.])'),
    ),
    Activation(
        "relu6", ELEMENTWISE,
        "ReLU capped at 6.",
        "min(max(0, x), 6)",
        exact=True,
        kinks="relu6'(0) = 0 and relu6'(6) = 0, as PyTorch's autograd.",
        specials=(Special(-INF, 0.0, 0.0), Special(INF, 6.0, 0.0),
                  Special(0.0, 0.0, 0.0), Special(6.0, 6.0, 0.0)),
        domain=(-2.0, 8.0),
        peers=('np.clip(x, 0, 6)',
               'F.relu6(x)'),
        examples=('array([0. , 0. , 0. , 1.5, 6. ])',
                  'array([0., 0., 0., 1., 0.])'),
    ),
    Activation(
        "hardtanh", ELEMENTWISE,
        "Hard tanh: x clipped to [min_val, max_val].",
        "clip(x, min_val, max_val)",
        params=(
            Param("min_val", -1.0, "Lower bound.", check=_finite, expect="a finite number"),
            Param("max_val", 1.0, "Upper bound; must not be below ``min_val``.",
                  check=_finite, expect="a finite number >= min_val"),
        ),
        exact=True,
        constraints=((lambda p: p["min_val"] <= p["max_val"], "min_val must be <= max_val"),),
        kinks="hardtanh'(min_val) = hardtanh'(max_val) = 0, as PyTorch's autograd.",
        specials=(Special(-INF, -1.0, 0.0), Special(INF, 1.0, 0.0),
                  Special(-1.0, -1.0, 0.0), Special(1.0, 1.0, 0.0)),
        domain=(-2.0, 2.0),
        peers=('np.clip(x, min_val, max_val)',
               'F.hardtanh(x, min_val, max_val)'),
        examples=('array([-1., -1.,  0.,  1.,  1.])',
                  'array([0., 0., 1., 0., 0.])'),
    ),
    Activation(
        "leaky_relu", ELEMENTWISE,
        "Leaky ReLU.",
        "x if x > 0 else negative_slope*x",
        params=(Param("negative_slope", 0.01, "Slope for x <= 0.",
                      check=_finite, expect="a finite number"),),
        exact=True,
        kinks="leaky_relu'(0) = negative_slope, as PyTorch's autograd.",
        specials=(Special(-INF, -INF, 0.01), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 0.01)),
        domain=(-4.0, 4.0),
        peers=('np.where(x > 0, x, negative_slope * x)',
               'F.leaky_relu(x, negative_slope)'),
        examples=('array([  -inf, -0.015,  0.   ,  1.5  ,    inf])',
                  'array([0.01, 0.01, 0.01, 1.  , 1.  ])'),
    ),
    Activation(
        "prelu", PRELU,
        "Parametric ReLU: leaky ReLU with a learned slope per channel.",
        "x if x > 0 else weight[c]*x, c the index along ``axis``",
        params=(
            Param("weight", REQUIRED, "The slope: a scalar, or a 1-D array of length "
                  "``x.shape[axis]`` (for 1-D ``x``, a scalar or length-1 array).",
                  kind="array", native=None, sample=0.25),
            Param("axis", 1, "The channel axis.", kind="axis", keyword_only=True,
                  native=None),
        ),
        exact=True,
        kinks="prelu'(0) = weight, as PyTorch's autograd; the weight's gradient "
              "sums grad_output*x over x <= 0 in a fixed order, so it is "
              "bit-identical for every thread count.",
        specials=(Special(-INF, -INF, 0.25), Special(INF, INF, 1.0)),
        domain=(-4.0, 4.0),
        peers=('np.where(x > 0, x, weight * x)',
               'F.prelu(x, torch.full((1,), weight, dtype=x.dtype))'),
        examples=('array([  -inf, -0.375,  0.   ,  1.5  ,    inf])',
                  '(array([0.25, 0.25, 0.25, 1.  , 1.  ]), array(-inf))'),
    ),
    Activation(
        "rrelu", ELEMENTWISE,
        "Randomized leaky ReLU.",
        "eval: leaky_relu with slope (lower+upper)/2; training: a slope per element "
        "drawn uniformly from [lower, upper] by a counter-based generator keyed by "
        "(seed, flat index)",
        params=(
            Param("lower", 1.0 / 8, "Lower bound of the slope.",
                  check=lambda v: math.isfinite(v) and v >= 0,
                  expect="a finite number >= 0 and <= upper"),
            Param("upper", 1.0 / 3, "Upper bound of the slope.", check=_finite,
                  expect="a finite number >= lower"),
            Param("training", False, "Draw a random slope per element.",
                  kind="bool", keyword_only=True),
            Param("seed", 0, "Generator key; with ``training=True`` the slopes are a "
                  "function of (seed, flat index) alone, identical for every thread "
                  "count, and ``rrelu_backward`` recomputes them.",
                  kind="int", check=lambda v: 0 <= v < 2**64,
                  expect="an integer in [0, 2**64)", keyword_only=True, native="key"),
        ),
        exact=True,
        constraints=((lambda p: p["lower"] <= p["upper"], "lower must be <= upper"),),
        kinks="rrelu'(0) = the slope, as leaky_relu.",
        specials=(Special(INF, INF, 1.0), Special(0.0, 0.0, (1 / 8 + 1 / 3) / 2)),
        domain=(-4.0, 4.0),
        peers=('np.where(x > 0, x, (lower + upper) / 2 * x)',
               'F.rrelu(x, lower, upper)'),
        examples=('array([    -inf, -0.34375,  0.     ,  1.5    ,      inf])',
                  'array([0.22916667, 0.22916667, 0.22916667, 1.        , 1.        ])'),
    ),
    Activation(
        "elu", ELEMENTWISE,
        "Exponential linear unit.",
        "x if x > 0 else alpha*expm1(x)",
        params=(_alpha(),),
        kinks="elu'(0) = alpha, as PyTorch's autograd.",
        specials=(Special(-INF, -1.0, 0.0), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 1.0)),
        domain=(-40.0, 10.0),
        peers=('np.where(x > 0, x, alpha * np.expm1(x))',
               'F.elu(x, alpha)'),
        examples=('array([-1.        , -0.77686984,  0.        ,  1.5       ,         inf])',
                  'array([0.        , 0.22313016, 1.        , 1.        , 1.        ])'),
    ),
    Activation(
        "selu", ELEMENTWISE,
        "Scaled exponential linear unit.",
        "scale*(x if x > 0 else alpha*expm1(x)), alpha = 1.6732632423543772848, "
        "scale = 1.0507009873554804934",
        kinks="selu'(0) = scale*alpha, as PyTorch's autograd.",
        specials=(Special(-INF, -SELU_SCALE_ALPHA, 0.0), Special(INF, INF, SELU_SCALE),
                  Special(0.0, 0.0, SELU_SCALE_ALPHA)),
        domain=(-40.0, 10.0),
        peers=('SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))',
               'F.selu(x)'),
        examples=('array([-1.75809934, -1.36581435,  0.        ,  1.57605148,         inf])',
                  'array([0.        , 0.39228499, 1.75809934, 1.05070099, 1.05070099])'),
    ),
    Activation(
        "celu", ELEMENTWISE,
        "Continuously differentiable ELU.",
        "max(0, x) + min(0, alpha*expm1(x/alpha))",
        params=(Param("alpha", 1.0, "Scale of the negative branch; not 0.",
                      check=_nonzero, expect="a finite number other than 0"),),
        kinks="celu'(0) = 1, as PyTorch's autograd.",
        specials=(Special(-INF, -1.0, 0.0), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 1.0)),
        domain=(-40.0, 10.0),
        peers=('np.maximum(0, x) + np.minimum(0, alpha * np.expm1(x / alpha))',
               'F.celu(x, alpha)'),
        examples=('array([-1.        , -0.77686984,  0.        ,  1.5       ,         inf])',
                  'array([0.        , 0.22313016, 1.        , 1.        , 1.        ])'),
    ),
    Activation(
        "softplus", ELEMENTWISE,
        "Smooth approximation of ReLU.",
        "log1p(exp(beta*x))/beta, and x where beta*x > threshold",
        params=(
            Param("beta", 1.0, "Sharpness; > 0.",
                  check=lambda v: v > 0 and math.isfinite(v), expect="a finite number > 0"),
            Param("threshold", 20.0, "Above ``beta*x > threshold`` the result is x.",
                  check=lambda v: not math.isnan(v), expect="a number"),
        ),
        specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0),
                  Special(1e4, 1e4, 1.0), Special(0.0, math.log(2.0), 0.5)),
        domain=(-100.0, 20.0),
        peers=('np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)',
               'F.softplus(x, beta, threshold)',
               'special.softplus(x)'),
        examples=('array([0.        , 0.20141328, 0.69314718, 1.70141328,        inf])',
                  'array([0.        , 0.18242552, 0.5       , 0.81757448, 1.        ])'),
    ),
    Activation(
        "sigmoid", ELEMENTWISE,
        "Logistic sigmoid.",
        "1/(1 + exp(-x))",
        backward_from_y=True,
        specials=(Special(-INF, 0.0, 0.0), Special(INF, 1.0, 0.0),
                  Special(0.0, 0.5, 0.25), Special(-1000.0, 0.0, 0.0)),
        domain=(-100.0, 40.0),
        peers=('1 / (1 + np.exp(-x))',
               'torch.sigmoid(x)',
               'special.expit(x)'),
        examples=('array([0.        , 0.18242552, 0.5       , 0.81757448, 1.        ])',
                  'array([0.        , 0.14914645, 0.25      , 0.14914645, 0.        ])'),
    ),
    Activation(
        "log_sigmoid", ELEMENTWISE,
        "Logarithm of the sigmoid.",
        "log(sigmoid(x)) = -softplus(-x)",
        specials=(Special(-INF, -INF, 1.0), Special(INF, 0.0, 0.0),
                  Special(-1e4, -1e4, 1.0), Special(0.0, -math.log(2.0), 0.5)),
        domain=(-40.0, 100.0),
        peers=('-np.logaddexp(0, -x)',
               'F.logsigmoid(x)',
               'special.log_expit(x)'),
        examples=('array([       -inf, -1.70141328, -0.69314718, -0.20141328, -0.        ])',
                  'array([1.        , 0.81757448, 0.5       , 0.18242552, 0.        ])'),
    ),
    Activation(
        "hardsigmoid", ELEMENTWISE,
        "Piecewise-linear sigmoid.",
        "clip(x/6 + 1/2, 0, 1)",
        kinks="hardsigmoid'(-3) = hardsigmoid'(3) = 0, as PyTorch's autograd.",
        specials=(Special(-INF, 0.0, 0.0), Special(INF, 1.0, 0.0),
                  Special(-3.0, 0.0, 0.0), Special(3.0, 1.0, 0.0),
                  Special(0.0, 0.5, 1 / 6)),
        domain=(-4.0, 4.0),
        peers=('np.clip(x / 6 + 0.5, 0, 1)',
               'F.hardsigmoid(x)'),
        examples=('array([0.  , 0.25, 0.5 , 0.75, 1.  ])',
                  'array([0.        , 0.16666667, 0.16666667, 0.16666667, 0.        ])'),
    ),
    Activation(
        "tanh", ELEMENTWISE,
        "Hyperbolic tangent.",
        "tanh(x)",
        backward_from_y=True,
        specials=(Special(-INF, -1.0, 0.0), Special(INF, 1.0, 0.0),
                  Special(0.0, 0.0, 1.0), Special(-0.0, -0.0, 1.0)),
        domain=(-20.0, 20.0),
        peers=('np.tanh(x)',
               'torch.tanh(x)'),
        examples=('array([-1.        , -0.90514825,  0.        ,  0.90514825,  1.        ])',
                  'array([0.        , 0.18070664, 1.        , 0.18070664, 0.        ])'),
    ),
    Activation(
        "softsign", ELEMENTWISE,
        "Softsign.",
        "x/(1 + |x|)",
        specials=(Special(-INF, -1.0, 0.0), Special(INF, 1.0, 0.0),
                  Special(0.0, 0.0, 1.0)),
        domain=(-100.0, 100.0),
        peers=('x / (1 + np.abs(x))',
               'F.softsign(x)'),
        examples=('array([-1. , -0.6,  0. ,  0.6,  1. ])',
                  'array([0.  , 0.16, 1.  , 0.16, 0.  ])'),
    ),
    Activation(
        "silu", ELEMENTWISE,
        "Sigmoid-weighted linear unit (swish with beta = 1).",
        "x*sigmoid(x)",
        **_SWISH_AT_BETA_1,
        peers=('x / (1 + np.exp(-x))',
               'F.silu(x)'),
    ),
    Activation(
        "swish", ELEMENTWISE,
        "Swish: x times the sigmoid of beta*x.",
        "x*sigmoid(beta*x); swish(x) equals silu(x)",
        params=(Param("beta", 1.0, "Sharpness.", check=_finite, expect="a finite number"),),
        **_SWISH_AT_BETA_1,
        peers=('x / (1 + np.exp(-beta * x))',
               'x * torch.sigmoid(beta * x)'),
    ),
    Activation(
        "hardswish", ELEMENTWISE,
        "Hard swish.",
        "x*hardsigmoid(x)",
        kinks="hardswish'(-3) = 0 and hardswish'(3) = 1, as PyTorch's autograd.",
        specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0),
                  Special(-3.0, 0.0, 0.0), Special(3.0, 3.0, 1.0),
                  Special(0.0, 0.0, 0.5)),
        domain=(-4.0, 4.0),
        grad_roots=(-1.5,),
        peers=('x * np.clip(x / 6 + 0.5, 0, 1)',
               'F.hardswish(x)'),
        examples=('array([ 0.   , -0.375,  0.   ,  1.125,    inf])',
                  'array([0. , 0. , 0.5, 1. , 1. ])'),
    ),
    Activation(
        "mish", ELEMENTWISE,
        "Mish.",
        "x*tanh(softplus(x))",
        specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 0.6)),
        domain=(-100.0, 40.0),
        grad_root_series=(RootSeries(-1.1924312145154952, -4.8484829848031044e-17, (
        0.2669479140495345, 0.20473126408010586, 0.04190782104360987, -0.020271822716684245,
        -0.01582112656173338, -0.0033606849270232685, 0.0010924055409445854,
        0.0009898181021289196, 0.00025412936386191073, -4.1961496031696126e-05,
        -5.582891567360688e-05, -1.72992708103044e-05, 9.427361327376651e-07,
        2.9088199364912223e-06, 1.071676702702074e-06, 2.6879417855557728e-08,
        -1.4117255919499382e-07, -6.174424363104907e-08, -5.460186173028381e-09,
        6.3895954615089855e-09)),),
        peers=('x * np.tanh(np.logaddexp(0, x))',
               'F.mish(x)'),
        examples=('array([-0.        , -0.29809974,  0.        ,  1.40337827,         inf])',
                  'array([ 0.        , -0.06409782,  0.6       ,  1.08848799,  1.        ])'),
    ),
    Activation(
        "gelu", ELEMENTWISE,
        "Gaussian error linear unit.",
        '"none": x*Phi(x) = x*erfc(-x/sqrt(2))/2; '
        '"tanh": x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))/2',
        params=(Param("approximate", "none", 'The form: "none" (exact, erfc) or '
                      '"tanh" (the tanh approximation).', kind="choice",
                      choices=("none", "tanh"), expect='"none" or "tanh"', native="op"),),
        specials=(Special(-INF, 0.0, 0.0), Special(INF, INF, 1.0),
                  Special(0.0, 0.0, 0.5),
                  Special(-INF, 0.0, 0.0, params=(("approximate", "tanh"),)),
                  Special(INF, INF, 1.0, params=(("approximate", "tanh"),))),
        domain=(-40.0, 10.0),
        grad_root_series=(
            RootSeries(-0.7517915246935645, 1.4956759177009883e-17, (
        0.4314939923140469, 0.388284982990552, -0.018199676398671087, -0.1140082332972217,
        -0.014771522148244337, 0.019421679838189067, 0.004539228379125415,
        -0.002239538068073497, -0.0007448268386746817, 0.00018633974623233514,
        8.615947861116571e-05, -1.121438018842664e-05, -7.74846130700372e-06,
        4.3284506257392273e-07, 5.702764979242107e-07, -1.6044265494246427e-09,
        -3.5459866461783865e-08, -1.396942086426202e-09, 1.90319840501314e-09,
        1.4506418938779426e-10),
                params=(("approximate", "none"),)),
            RootSeries(-0.7524614220710163, 3.635560509207687e-17, (
        0.4304000910248585, 0.38751844613578895, -0.01578285352184803, -0.11394448308095899,
        -0.01661932834305256, 0.019682309459833118, 0.005261059254921912,
        -0.0024227318458750974, -0.0009274420230205449, 0.00026392764052681053,
        0.00012425227802639782, -3.4956171694436116e-05, -1.5950896871645105e-05,
        5.918611710894005e-06, 2.4335516344299543e-06, -9.898647747433667e-07,
        -4.3102482988029016e-07, 1.4157556987729473e-07, 7.520740909289922e-08,
        -1.6978217459781023e-08),
                params=(("approximate", "tanh"),)),
        ),
        peers=('0.5 * x * (1 + erf(x * 0.7071067811865476))',
               'F.gelu(x, approximate=approximate)'),
        examples=('array([-0.       , -0.1002108,  0.       ,  1.3997892,        inf])',
                  'array([ 0.        , -0.12746919,  0.5       ,  1.12746919,  1.        ])'),
    ),
    Activation(
        "softmax", SOFTMAX,
        "Softmax along an axis.",
        "exp(x - max)/sum(exp(x - max)) along ``axis``",
        params=(_axis(),),
        kinks="The backward takes the forward result: softmax_backward(g, y) = "
              "y*(g - sum(g*y)).",
        domain=(-20.0, 20.0),
        peers=('np.exp(x - x.max(axis, keepdims=True)) / np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True)',
               'torch.softmax(x, axis)',
               'special.softmax(x, axis)'),
        examples=('array([0.        , 0.03911257, 0.17529039, 0.78559703])',
                  'array([ 0.        , -0.03072672, -0.13770761,  0.16843433])'),
    ),
    Activation(
        "log_softmax", SOFTMAX,
        "Logarithm of the softmax along an axis, never computed as log(softmax).",
        "x - max - log(sum(exp(x - max))) along ``axis``",
        params=(_axis(),),
        kinks="The backward takes the forward result: log_softmax_backward(g, y) = "
              "g - exp(y)*sum(g).",
        domain=(-20.0, 20.0),
        peers=('x - x.max(axis, keepdims=True) - np.log(np.exp(x - x.max(axis, keepdims=True)).sum(axis, keepdims=True))',
               'torch.log_softmax(x, axis)',
               'special.log_softmax(x, axis)'),
        examples=('array([      -inf, -3.2413113, -1.7413113, -0.2413113])',
                  'array([ 1.        , -0.07822515, -0.35058078, -0.57119407])'),
    ),
    Activation(
        "maxout", MAXOUT,
        "Maxout: the maximum of consecutive groups along an axis.",
        "unit j = max of x[..., j*pieces:(j+1)*pieces, ...] along ``axis``",
        params=(
            Param("pieces", REQUIRED, "Group size; ``x.shape[axis]`` must divide by it.",
                  kind="int", check=lambda v: v >= 1, expect="an integer >= 1",
                  native=None, sample=2),
            _axis(),
        ),
        exact=True,
        kinks="The backward routes each group's gradient to its first maximal element "
              "(a NaN counts as maximal).",
        domain=(-4.0, 4.0),
        peers=('x.reshape(x.shape[:-1] + (-1, pieces)).max(-1)',
               'x.unflatten(-1, (-1, pieces)).amax(-1)'),
        examples=('array([-1.5,  1.5])',
                  'array([0., 1., 0., 1.])'),
    ),
)

BY_NAME = {a.name: a for a in ACTIVATIONS}

#: The C ops of the element-wise activations in op-code order (the code is
#: the index): one per activation, or one per form (gelu, gelu_tanh).
NATIVE_OPS: Tuple[str, ...] = tuple(op for a in ACTIVATIONS for op in a.native_op_names)

#: The activation each C op computes.
OP_ACTIVATION = {op: a for a in ACTIVATIONS for op in a.native_op_names}


def op_code(op: str) -> int:
    return NATIVE_OPS.index(op)
