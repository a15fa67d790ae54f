"""Tests of the qstore native-gate compiler."""
