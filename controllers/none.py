"""`none`: the unsteered baseline, with the neutral system message every controller starts from."""

from emobench.controller import Controller


class NoneController(Controller):
    name = "none"
