import numpy as np

from association.linking import link


def test_minimum_cost_matching():
    cost = np.array([[0.1, 0.9], [0.2, 0.3]])
    matches, ur, uc = link(cost, max_cost=1.0)
    assert sorted(map(tuple, matches.tolist())) == [(0, 0), (1, 1)]
    assert ur.size == 0 and uc.size == 0


def test_gate_blocks_pairs():
    cost = np.array([[0.1, 0.9], [0.95, 0.99]])
    matches, ur, uc = link(cost, max_cost=0.5)
    assert matches.tolist() == [[0, 0]]
    assert ur.tolist() == [1] and uc.tolist() == [1]


def test_gate_does_not_steal_an_allowed_pair():
    # The solver alone would prefer (0,1)+(1,0) = 0.2 + inf-ish; the gated answer keeps both allowed pairs.
    cost = np.array([[0.4, 0.2], [0.3, np.inf]])
    matches, _, _ = link(cost, max_cost=0.5)
    assert sorted(map(tuple, matches.tolist())) == [(0, 1), (1, 0)]


def test_empty_inputs():
    for shape in [(0, 0), (0, 3), (2, 0)]:
        matches, ur, uc = link(np.zeros(shape), 1.0)
        assert matches.shape == (0, 2)
        assert ur.tolist() == list(range(shape[0])) and uc.tolist() == list(range(shape[1]))
