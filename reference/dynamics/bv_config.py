"""The ``--config`` file big_vision/train.py loads: ``.../bv_config.py:<path to the translated JSON>``.

big_vision configs are Python files with ``get_config(arg)``; ours only wraps the JSON that
``reference.dynamics.config.translate`` wrote for one seed into an ``ml_collections.ConfigDict``.
"""
import json

import ml_collections


def get_config(arg):
    with open(arg) as f:
        return ml_collections.ConfigDict(json.load(f))
