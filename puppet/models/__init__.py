from puppet.models.crn import CRN

__all__ = ["CRN"]
