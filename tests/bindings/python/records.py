"""Records the bindings tests register: simulated traders, never real people."""


def trader(mpaka, name, phone, **fields):
    """A consenting woman trader registered at Rusizi II; `fields` override."""
    values = {
        "id": "",
        "full_name": name,
        "sex": "female",
        "year_of_birth": 1990,
        "age_band": None,
        "nationality": "CD",
        "phone": phone,
        "main_goods": ["beans"],
        "border_post": "rusizi_2",
        "consent_given": True,
        "consent_at": None,
    }
    values.update(fields)
    return mpaka.Trader(**values)
