"""Saved results beyond storage: one resolver for every reference kind, reruns from data snapshots, listing."""
