"""Option sets of the served tables: each choice column's values and English labels.

Values and labels follow the Dataverse table reference (reference §6). Status options also say
which state they belong to (``statuscode`` → ``statecode``), as ``StatusOptionMetadata.State``
does; the metadata endpoints and the formatted values are both generated from these.
"""

from __future__ import annotations

YES_NO = {1: "Yes", 0: "No"}
ALLOW_DONT = {0: "Allow", 1: "Do Not Allow"}
LEAD_STATE = {0: "Open", 1: "Qualified", 2: "Disqualified"}
LEAD_STATUS = {
    1: "New",
    2: "Contacted",
    3: "Qualified",
    4: "Lost",
    5: "Cannot Contact",
    6: "No Longer Interested",
    7: "Canceled",
}
ACTIVE_STATE = {0: "Active", 1: "Inactive"}
ACTIVE_STATUS = {1: "Active", 2: "Inactive"}
OPPORTUNITY_STATE = {0: "Open", 1: "Won", 2: "Lost"}
OPPORTUNITY_STATUS = {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"}
LEAD_SOURCE = {
    1: "Advertisement",
    2: "Employee Referral",
    3: "External Referral",
    4: "Partner",
    5: "Public Relations",
    6: "Seminar",
    7: "Trade Show",
    8: "Web",
    9: "Word of Mouth",
    10: "Other",
}
LEAD_QUALITY = {1: "Hot", 2: "Warm", 3: "Cold"}
CONTACT_METHOD = {1: "Any", 2: "Email", 3: "Phone", 4: "Fax", 5: "Mail"}
INDUSTRY = {
    1: "Accounting",
    2: "Agriculture and Non-petrol Natural Resource Extraction",
    3: "Broadcasting Printing and Publishing",
    4: "Brokers",
    5: "Building Supply Retail",
    6: "Business Services",
    7: "Consulting",
    8: "Consumer Services",
    9: "Design, Direction and Creative Management",
    10: "Distributors, Dispatchers and Processors",
    11: "Doctor's Offices and Clinics",
    12: "Durable Manufacturing",
    13: "Eating and Drinking Places",
    14: "Entertainment Retail",
    15: "Equipment Rental and Leasing",
    16: "Financial",
    17: "Food and Tobacco Processing",
    18: "Inbound Capital Intensive Processing",
    19: "Inbound Repair and Services",
    20: "Insurance",
    21: "Legal Services",
    22: "Non-Durable Merchandise Retail",
    23: "Outbound Consumer Service",
    24: "Petrochemical Extraction and Distribution",
    25: "Service Retail",
    26: "SIG Affiliations",
    27: "Social Services",
    28: "Special Outbound Trade Contractors",
    29: "Specialty Realty",
    30: "Transportation",
    31: "Utility Creation and Distribution",
    32: "Vehicle Retail",
    33: "Wholesale",
}
BUSINESS_TYPE = {1: "Default Value"}
TEAM_TYPE = {
    0: "Owner",
    1: "Access",
    2: "Microsoft Entra ID Security Group",
    3: "Microsoft Entra ID Office Group",
}
ACCESS_MODE = {
    0: "Read-Write",
    1: "Administrative",
    2: "Read",
    3: "Support User",
    4: "Non-interactive",
}
CONNECTION_ROLE_CATEGORY = {
    1: "Business",
    2: "Family",
    3: "Social",
    4: "Sales",
    5: "Other",
    1000: "Stakeholder",
    1001: "Sales Team",
    1002: "Service",
}

# statuscode value → the statecode value it belongs to (StatusOptionMetadata.State).
LEAD_STATUS_STATE = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2, 6: 2, 7: 2}
ACTIVE_STATUS_STATE = {1: 0, 2: 1}
OPPORTUNITY_STATUS_STATE = {1: 0, 2: 0, 3: 1, 4: 2, 5: 2}
