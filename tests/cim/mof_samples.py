"""MOF snippets shared by the MOF tests: the qualifier declarations a small schema needs."""

QUALIFIERS = """
Qualifier Abstract : boolean = false, Scope(class, association, indication), Flavor(EnableOverride, Restricted);
Qualifier Association : boolean = false, Scope(association), Flavor(DisableOverride, ToSubclass);
Qualifier Indication : boolean = false, Scope(class, indication), Flavor(DisableOverride, ToSubclass);
Qualifier Description : string = null, Scope(any), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier Key : boolean = false, Scope(property, reference), Flavor(DisableOverride, ToSubclass);
Qualifier Override : string = null, Scope(property, reference, method), Flavor(EnableOverride, Restricted);
Qualifier MaxLen : uint32 = null, Scope(property, method, parameter);
Qualifier ValueMap : string[], Scope(property, method, parameter);
Qualifier Values : string[], Scope(property, method, parameter), Flavor(EnableOverride, ToSubclass, Translatable);
Qualifier EmbeddedInstance : string = null, Scope(property, method, parameter);
Qualifier EmbeddedObject : boolean = false, Scope(property, method, parameter), Flavor(DisableOverride, ToSubclass);
Qualifier In : boolean = true, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Out : boolean = false, Scope(parameter), Flavor(DisableOverride, ToSubclass);
Qualifier Required : boolean = false, Scope(property, reference, method, parameter),
    Flavor(DisableOverride, ToSubclass);
Qualifier Static : boolean = false, Scope(property, method), Flavor(DisableOverride, ToSubclass);
Qualifier Deprecated : string[], Scope(any), Flavor(EnableOverride, Restricted);
Qualifier Min : uint32 = 0, Scope(reference);
"""

PERSON = QUALIFIERS + """
[Abstract, Description("Anything with a name")]
class Sample_Named
{
    [Key, MaxLen(32), Description("The name")] string Name;
    [Description("Free text")] string Note = "none";
};

[Description("A person")]
class Sample_Person : Sample_Named
{
    [Override("Name"), Description("The full name")] string Name;
    uint32 Age = 0x20;
    string Tags[];
    real64 Scores[3] = {1.5, -2.0, 3e2};
    char16 Initial = 'A';
    datetime Born = "19151210000000.000000+000";
    boolean Alive = TRUE;
    sint8 Mood = -5;
    uint16 Mode = 0755;
    uint8 Bits = 1010b;
    [EmbeddedInstance("Sample_Named")] string Friend;
    [EmbeddedObject] string Anything;
    [ValueMap {"0", "1"}, Values {"Off", "On"}] uint16 State;
    [Static] uint32 Greet([In, Description("whom")] string Whom, [In(false), Out] string Reply,
                          [Out, EmbeddedInstance("Sample_Named")] string Echo[]);
};

[Association, Description("Who knows whom")]
class Sample_Knows
{
    [Key] Sample_Person REF Knower;
    [Key, Min(1)] Sample_Person REF Known;
};
"""
