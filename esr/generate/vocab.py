"""Word lists for the synthetic trust: names, places, jobs, cars and the ESR code lists (Q8).

Every string is Windows-1252 encodable and free of `~`, CR and LF (the file is written in cp1252, Q4/Q5);
the generator's tests check this. Non-ASCII names are Welsh, Irish and European names that exist in
Windows-1252: "Dvořák" or "Łukasz" do not, so they are not here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

FEMALE_FIRST_NAMES = (
    "Olivia", "Amelia", "Emily", "Sophie", "Jessica", "Hannah", "Sarah", "Laura", "Rebecca", "Charlotte",
    "Emma", "Lucy", "Rachel", "Katie", "Claire", "Helen", "Nicola", "Joanne", "Karen", "Susan", "Julie",
    "Lisa", "Michelle", "Angela", "Donna", "Gemma", "Amy", "Megan", "Chloe", "Grace", "Priya", "Aisha",
    "Fatima", "Ngozi", "Mary", "Patricia", "Anne", "Margaret", "Deborah", "Ffion", "Rhiannon", "Niamh",
    "Aoife", "Eilidh", "Catrin", "Bethan", "Joy", "Blessing", "Mei", "Anita",
)
MALE_FIRST_NAMES = (
    "Oliver", "George", "Harry", "Jack", "Jacob", "Thomas", "James", "William", "Daniel", "Matthew",
    "David", "Andrew", "Richard", "Mark", "Paul", "Stephen", "Michael", "Christopher", "Peter", "John",
    "Robert", "Simon", "Gareth", "Rhys", "Dafydd", "Owain", "Liam", "Connor", "Callum", "Mohammed",
    "Ahmed", "Rajesh", "Sanjay", "Chinedu", "Kwame", "Tomasz", "Piotr", "Luca", "Samuel", "Joseph",
)
# The ~3% minority of non-ASCII names (Q4): each exists in Windows-1252.
ACCENTED_FEMALE_FIRST_NAMES = (
    "Siân", "Zoë", "Siobhán", "Chloë", "Renée", "Bríd", "Máire", "Gwenllïan", "Inés", "Mélanie",
    "Sinéad", "Áine", "Órla", "Françoise", "Léa", "Björg",
)
ACCENTED_MALE_FIRST_NAMES = (
    "Seán", "Björn", "José", "Ciarán", "Pádraig", "Éamon", "Søren", "Jürgen", "François", "Tomás",
    "Dónal", "Rúben", "Ömer", "Andrés", "Jérôme", "Niklas",
)
SURNAMES = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas", "Johnson",
    "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes", "Green", "Hall",
    "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin", "Cooper", "Hill", "Ward",
    "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison", "Morgan", "Allen", "James", "Scott",
    "Phillips", "Watson", "Davis", "Parker", "Price", "Bennett", "Young", "Griffiths", "Mitchell", "Kelly",
    "Cook", "Carter", "Richardson", "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox",
    "Richards", "Khan", "Marshall", "Anderson", "Simpson", "Ellis", "Adams", "Singh", "Begum", "Chapman",
    "Dixon", "Kaur", "Ahmed", "Ali", "Okafor", "Mensah", "O'Brien", "O'Connor", "McDonald", "Campbell",
    "Stewart", "Reid", "Murray", "Fraser", "Lloyd", "Rees", "Jenkins", "Owen", "Pryce", "Hughes-Jones",
    "Nowak", "Kowalski", "Chen", "Nguyen", "Adeyemi", "Osei",
)
ACCENTED_SURNAMES = (
    "Ó Súilleabháin", "Ó Briain", "Ní Bhriain", "Müller", "Núñez", "García", "Gómez", "Pérez", "Öztürk",
    "Lefèvre", "Böhm", "Ó Ceallaigh", "Sánchez", "Fernández", "Jiménez", "Dubé", "Ó Néill", "Schäfer",
)
FEMALE_TITLES = ("Miss", "Ms.")  # unmarried; "Mrs." goes with a maiden name, "Dr." with a medical post
ETHNIC_ORIGINS = (
    "A White - British", "A White - British", "A White - British", "C White - Any other", "B White - Irish",
    "H Asian - Indian", "J Asian - Pakistani", "N Black - African", "M Black - Caribbean", "Z Not Stated",
)
MARITAL_STATUSES = ("Single", "Married", "Married", "Divorced", "Civil Partnership", "Widowed", "Unknown")
NATIONALITIES = ("British", "British", "British", "British", "Irish", "Indian", "Filipino", "Nigerian", "Polish")
COUNTRIES_OF_BIRTH = ("United Kingdom", "United Kingdom", "United Kingdom", "Ireland", "India", "Philippines")
TERMINATION_REASONS = (
    "Voluntary Resignation", "Voluntary Early Retirement", "Retirement Age", "End of Fixed Term Contract",
    "Dismissal - Capability",
)


class Town(NamedTuple):
    name: str
    county: str
    postcode_area: str


TOWNS = (
    Town("Leeds", "West Yorkshire", "LS"), Town("Bradford", "West Yorkshire", "BD"),
    Town("Sheffield", "South Yorkshire", "S"), Town("Manchester", "Greater Manchester", "M"),
    Town("Bolton", "Greater Manchester", "BL"), Town("Liverpool", "Merseyside", "L"),
    Town("Birmingham", "West Midlands", "B"), Town("Coventry", "West Midlands", "CV"),
    Town("Bristol", "Avon", "BS"), Town("Exeter", "Devon", "EX"), Town("Norwich", "Norfolk", "NR"),
    Town("Cardiff", "South Glamorgan", "CF"), Town("Swansea", "West Glamorgan", "SA"),
    Town("Newcastle upon Tyne", "Tyne and Wear", "NE"), Town("Nottingham", "Nottinghamshire", "NG"),
    Town("Leicester", "Leicestershire", "LE"), Town("Reading", "Berkshire", "RG"),
    Town("Southampton", "Hampshire", "SO"), Town("Ipswich", "Suffolk", "IP"), Town("York", "North Yorkshire", "YO"),
)
STREET_NAMES = (
    "High", "Church", "Station", "Victoria", "Park", "Mill", "School", "Queens", "Kings", "Manor", "Chapel",
    "Elm", "Oak", "Willow", "Beech", "Meadow", "Orchard", "Hillside", "Riverside", "Springfield", "Windsor",
    "Heol y Coed", "Maes yr Haf", "St Mary's", "St John's",
)
STREET_KINDS = ("Road", "Street", "Avenue", "Close", "Lane", "Drive", "Way", "Crescent", "Gardens", "Terrace")
LOCALITIES = ("Northside", "Westfield", "Broadmead", "Newtown", "Oakwood", "Hillcrest", "Riverview", "Kingsway")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the inward-code letters: never C, I, K, M, O or V

SITE_KINDS = (
    "General Hospital", "Royal Infirmary", "Community Hospital", "Health Centre", "Medical Centre", "Clinic",
    "Trust Headquarters", "Mental Health Unit", "Day Hospital", "Treatment Centre",
)
SITE_BUILDINGS = (None, "Hospital Site", "Block B", "Ground Floor", "Education Centre")
DEPARTMENTS = (
    "Renal Nursing", "General Surgery", "Emergency Department", "Pharmacy", "Estates", "Finance", "Radiology",
    "Pathology", "Maternity", "Paediatrics", "Cardiology", "Oncology", "Physiotherapy", "Human Resources",
    "IT Services", "Catering", "Domestic Services", "Theatres", "Critical Care", "Outpatients",
    "District Nursing", "Community Mental Health", "Occupational Therapy", "Medical Records", "Dermatology",
)


class Job(NamedTuple):
    staff_group: str
    job_role: str
    occupation_code: str
    payscale: str
    grade_name: str  # the third part of the ASA grade composite
    subjective_code: str
    subjective_description: str
    salary: Decimal  # full-time annual salary


def _afc(staff_group: str, job_role: str, occupation: str, band: int, subjective: str, description: str,
         salary: int) -> Job:
    """An Agenda for Change post: payscale XRnn, grade "Review Body Band n"."""
    return Job(staff_group, job_role, occupation, f"XR{band:02d}", f"Review Body Band {band}", subjective,
               description, Decimal(salary))


# Weighted by repetition: nurses and support staff outnumber consultants.
JOBS = (
    _afc("Nursing and Midwifery Registered", "Staff Nurse", "N7B", 5, "5EA1", "Registered Nurses", 29970),
    _afc("Nursing and Midwifery Registered", "Staff Nurse", "N7B", 5, "5EA1", "Registered Nurses", 29970),
    _afc("Nursing and Midwifery Registered", "Sister/Charge Nurse", "N6A", 6, "5EA1", "Registered Nurses", 37338),
    _afc("Nursing and Midwifery Registered", "Midwife", "N8H", 6, "5EA2", "Registered Midwives", 37338),
    _afc("Nursing and Midwifery Registered", "Modern Matron", "N3A", 8, "5EA1", "Registered Nurses", 53755),
    _afc("Additional Clinical Services", "Healthcare Assistant", "H1A", 2, "5EB1", "Unregistered Nurses", 23615),
    _afc("Additional Clinical Services", "Healthcare Assistant", "H1A", 3, "5EB1", "Unregistered Nurses", 24071),
    _afc("Administrative and Clerical", "Administrator", "G2A", 3, "5GA1", "Admin and Clerical", 24071),
    _afc("Administrative and Clerical", "Medical Secretary", "G2B", 4, "5GA1", "Admin and Clerical", 26530),
    _afc("Administrative and Clerical", "Manager", "G0A", 7, "5GA2", "Senior Managers", 46148),
    _afc("Allied Health Professionals", "Physiotherapist", "S2A", 6, "5FA1", "Allied Health Professionals",
         37338),
    _afc("Allied Health Professionals", "Radiographer - Diagnostic", "S4A", 5, "5FA2", "Radiographers", 29970),
    _afc("Add Prof Scientific and Technic", "Pharmacist", "S5B", 7, "5HA1", "Pharmacists", 46148),
    _afc("Healthcare Scientists", "Biomedical Scientist", "S1C", 5, "5HB1", "Healthcare Scientists", 29970),
    _afc("Estates and Ancillary", "Porter", "G5A", 2, "5JA1", "Estates Staff", 23615),
    _afc("Estates and Ancillary", "Domestic", "G5B", 2, "5JA2", "Hotel Services", 23615),
    Job("Medical and Dental", "Consultant", "021", "YM72", "Consultant", "5CA1", "Consultants", Decimal(105504)),
    Job("Medical and Dental", "Specialty Registrar", "023", "YM53", "Specialty Registrar", "5CB1",
        "Doctors in Training", Decimal(55329)),
    Job("Medical and Dental", "Foundation Year 1", "025", "YM01", "Foundation Year 1", "5CB1",
        "Doctors in Training", Decimal(32398)),
)
FULL_TIME_HOURS = Decimal("37.5")
# Hours a week with their exact share of 37.5 (FTE needs no rounding).
PART_TIME_HOURS = (Decimal("30"), Decimal("22.5"), Decimal("18.75"), Decimal("15"), Decimal("7.5"))
SECONDARY_POST_HOURS = (Decimal("15"), Decimal("7.5"))  # second jobs are small: bank shifts, sessions
EMPLOYEE_CATEGORIES = ("Full Time", "Part Time")
ASSIGNMENT_CATEGORIES = ("Permanent", "Permanent", "Permanent", "Fixed Term Temp")
PEOPLE_GROUPS = ("Non Bank", "Non Bank", "Non Bank", "Bank Control")


class Car(NamedTuple):
    make: str
    model: str
    engine_ccs: tuple[int, ...]  # empty for an electric car
    fuel_types: tuple[str, ...]


# Fuel codes as Assure maps them (§2.9): P petrol, D/DE diesel, H hybrid, E electric (Q8).
CARS = (
    Car("FORD", "FOCUS", (998, 1498, 1596), ("P", "D")), Car("FORD", "FIESTA", (998, 1242), ("P",)),
    Car("VAUXHALL", "ASTRA", (1398, 1598), ("P", "D")), Car("VAUXHALL", "CORSA", (1199, 1398), ("P",)),
    Car("VOLKSWAGEN", "GOLF", (1395, 1598, 1968), ("P", "D", "DE")), Car("VOLKSWAGEN", "POLO", (999,), ("P",)),
    Car("TOYOTA", "YARIS", (1490,), ("H", "P")), Car("TOYOTA", "PRIUS", (1798,), ("H",)),
    Car("TOYOTA", "COROLLA", (1798, 1987), ("H",)), Car("KIA", "SPORTAGE", (1598, 1591), ("P", "D", "H")),
    Car("NISSAN", "QASHQAI", (1332, 1461), ("P", "D")), Car("BMW", "320D", (1995,), ("D", "DE")),
    Car("AUDI", "A3", (1598, 1968), ("P", "D")), Car("SKODA", "OCTAVIA", (1598, 1968), ("P", "DE")),
    Car("PEUGEOT", "208", (1199,), ("P",)), Car("RENAULT", "CLIO", (898, 1461), ("P", "D")),
    Car("MINI", "COOPER", (1499,), ("P",)), Car("HONDA", "JAZZ", (1318, 1498), ("P", "H")),
    Car("NISSAN", "LEAF", (), ("E",)), Car("TESLA", "MODEL 3", (), ("E",)), Car("MG", "MG4", (), ("E",)),
)
REGISTRATION_LETTERS = "ABCDEFGHJKLMNOPRSTUVWXY"  # no I, Q or Z in a current-style number
USER_RATES_TABLES = (
    "NHS_MILEAGE_CASUAL", "NHS_MILEAGE_CASUAL", "NHS_MILEAGE_ESSENTIAL", "NHS_MILEAGE_STANDARD",
)
OWNERSHIPS = ("P", "P", "P", "P", "L")
PHONE_TYPES = ("H1", "W1", "M")
# Costing splits (percentages) with their weights by repetition; each sums to 100.
COSTING_SPLITS: tuple[tuple[Decimal, ...], ...] = (
    (Decimal(100),), (Decimal(100),), (Decimal(100),), (Decimal(100),), (Decimal(100),), (Decimal(100),),
    (Decimal(50), Decimal(50)), (Decimal(60), Decimal(40)), (Decimal(70), Decimal(30)),
    (Decimal(80), Decimal(20)), (Decimal("33.33"), Decimal("33.33"), Decimal("33.34")),
    (Decimal(50), Decimal(25), Decimal(25)),
)
