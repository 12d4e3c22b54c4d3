#!/usr/bin/env python3
"""Generates the DataScript benchmark data set once, for both engines.

people: 20,000 people like DataScript's bench (name from 8 first names,
last-name from 6, sex :male/:female, age 0-99, salary 0-99,999, a few
aliases), from a seeded generator. graphs: `follows` edges for the rules
benchmark, tree-shaped ("wide": every node has `width` children, `depth`
levels) and chain-shaped ("long": `width` chains of `depth` nodes each linked
to the next), plus one 100k-edge chain for the memory check.
"""
import json
import random
import sys

FIRST = ["Ivan", "Petr", "Sergei", "Oleg", "Yuri", "Dmitry", "Fedor", "Denis"]
LAST = ["Ivanov", "Petrov", "Sidorov", "Kovalev", "Kuznetsov", "Voronoi"]
ALIASES = ["A. C. Q. W.", "A. J. Finn", "A.A. Fair", "Aapeli", "Aaron Wolfe", "Abigail Van Buren",
           "Jeanne Phillips", "Abram Tertz", "Abu Nuwas", "Acton Bell", "Adunis"]


def person(rng, i):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {"id": i, "name": first, "last-name": last, "full-name": f"{first} {last}",
            "alias": [rng.choice(ALIASES) for _ in range(rng.randrange(10))],
            "sex": rng.choice(["male", "female"]), "age": rng.randrange(100), "salary": rng.randrange(100000)}


def wide(depth, width):
    edges, frontier, next_id = [], [1], 2
    for _ in range(depth):
        new = []
        for parent in frontier:
            for _ in range(width):
                edges.append([parent, next_id])
                new.append(next_id)
                next_id += 1
        frontier = new
    return edges


def long(depth, width):
    edges, next_id = [], 2
    for _ in range(width):
        prev = 1
        for _ in range(depth):
            edges.append([prev, next_id])
            prev, next_id = next_id, next_id + 1
    return edges


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "data.json"
    rng = random.Random(20261122)
    data = {
        "people": [person(rng, i + 1) for i in range(20000)],
        "graphs": {
            "rules-wide-3x3": wide(3, 3), "rules-wide-5x3": wide(5, 3), "rules-wide-7x3": wide(7, 3),
            "rules-wide-4x6": wide(4, 6), "rules-long-10x3": long(10, 3), "rules-long-30x3": long(30, 3),
            "rules-long-30x5": long(30, 5),
        },
    }
    with open(out, "w") as f:
        json.dump(data, f)
    print(f"wrote {out}: {len(data['people'])} people, "
          f"{sum(len(g) for g in data['graphs'].values())} graph edges")


if __name__ == "__main__":
    main()
