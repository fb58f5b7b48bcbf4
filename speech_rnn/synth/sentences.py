"""English sentences for the synthetic corpus: a small grammar over our own lexicon.

The lexicon below (nouns grouped by meaning, verbs tagged with the kinds of object they take,
adjectives grouped by what they describe) was written for this project. Templates combine it
into statements, questions, commands, compound sentences, and sentences with numbers, prices,
times, dates and spelled-out digit strings. Everything is written in words ("seven fifteen",
"four two nine one"), so the transcript is exactly what the synthesizer says, and every word
normalizes to lowercase ``a-z`` and apostrophes.

``generate_sentences(n, seed)`` is deterministic, and the sentences of a seed form one
stream: asking for more sentences extends the list, it never reorders it.
"""
from __future__ import annotations

import random
from functools import lru_cache
from itertools import islice

from ..text import DIGIT_WORDS, normalize_text, number_to_words

MIN_WORDS = 2
MAX_WORDS = 25

# --------------------------------------------------------------------------------------------
# Lexicon. Nouns: count nouns unless the group name ends in "_mass".
# --------------------------------------------------------------------------------------------

_NOUNS = {
    "animal": """
        dog cat horse cow pig sheep goat chicken duck goose rabbit mouse rat bird owl eagle
        hawk crow pigeon parrot swan turkey deer fox wolf bear lion tiger elephant monkey zebra
        giraffe camel donkey frog toad snake lizard turtle fish shark whale dolphin seal crab
        lobster spider bee ant butterfly moth beetle worm snail squirrel hedgehog badger otter
        beaver kitten puppy lamb calf pony bull hen rooster robin sparrow penguin kangaroo
        koala panda gorilla buffalo leopard cheetah hippo rhino moose raccoon skunk mosquito
        wasp octopus salmon trout goldfish hamster crocodile ostrich peacock flamingo pelican
        seagull swallow pheasant heron dragonfly ladybug caterpillar grasshopper chipmunk mole
        weasel jaguar panther reindeer antelope bison llama walrus starfish oyster shrimp
        vulture magpie canary finch lark stork crane cuckoo hummingbird woodpecker porcupine
        """,
    "food": """
        apple banana orange pear peach plum cherry grape lemon lime melon watermelon strawberry
        blueberry raspberry mango pineapple coconut apricot tomato potato onion carrot cabbage
        cucumber pumpkin bean pea mushroom radish turnip sandwich biscuit cookie cake pie
        muffin pancake waffle bagel egg sausage burger pizza noodle dumpling pretzel doughnut
        cupcake omelet steak almond peanut walnut olive avocado cracker pastry tart loaf taco
        kiwi papaya tangerine grapefruit zucchini eggplant leek beet parsnip artichoke hazelnut
        cashew chestnut fig pickle meatball cutlet raisin lentil chickpea scone brownie crepe
        casserole lasagna burrito kebab sardine dumpling radish
        """,
    "food_mass": """
        bread rice pasta soup cheese butter meat beef pork ham bacon flour sugar salt pepper
        honey jam cereal porridge yogurt cream chocolate popcorn toast oatmeal spinach broccoli
        corn garlic ginger cinnamon vinegar mustard ketchup sauce gravy lettuce celery fruit
        seafood spaghetti curry stew pudding custard syrup salad candy tuna salsa hummus
        granola tofu broth caramel marmalade mayonnaise pepperoni salami yeast vanilla nutmeg
        paprika oregano basil parsley mint thyme rosemary
    """,
    "drink_mass": """
        water milk coffee tea juice lemonade soda cocoa wine beer cider milkshake
        smoothie espresso champagne brandy
        """,
    "meal": """
        breakfast lunch dinner supper snack meal picnic feast dessert
        """,
    "thing": """
        table chair sofa couch bed pillow blanket lamp clock mirror window door drawer shelf
        cupboard closet carpet rug curtain towel sink bathtub kettle pot pan plate bowl cup mug
        glass spoon fork knife bottle jar box basket bucket bag suitcase wallet purse key lock
        umbrella candle vase picture frame stove oven fridge freezer toaster fan heater radio
        television telephone phone computer laptop keyboard printer camera battery charger
        cable plug switch remote speaker notebook pencil pen marker crayon eraser ruler stapler
        envelope stamp parcel package ticket map calendar folder poster card gift present toy
        doll ball kite puzzle balloon brush comb toothbrush sponge broom mop hammer nail screw
        screwdriver wrench saw drill ladder rope chain wire tape needle button zipper ribbon
        ring necklace bracelet watch coin bench desk cabinet tray jug teapot napkin tablecloth
        mat cushion mattress hanger hook bell whistle flag tent backpack helmet flashlight
        lantern compass globe trophy medal badge sticker magnet shovel rake hose wheelbarrow
        axe barrel crate sack net fence gate tire wheel engine pump pipe tube lid cork ladle
        whisk grater blender mixer sieve bulb telescope microscope calculator clipboard brick
        tile shell feather stool armchair bookcase wardrobe dresser quilt duvet doormat
        doorbell doorknob handle faucet saucepan skillet colander spatula chopstick teaspoon
        tablespoon thermos lunchbox thermometer timer alarm paintbrush canvas easel sketchbook
        notepad binder sharpener highlighter projector monitor microphone headset tablet router
        antenna drone robot gadget device tool toolbox bolt hinge chisel trowel spade sprinkler
        birdhouse kennel cage leash collar saddle horseshoe anchor oar paddle sail mast
        surfboard snowboard ski racket puck hoop jigsaw domino chessboard rattle stroller crib
        cradle bib earring brooch pendant locket crown tiara wand mask wig lipstick razor
        tissue bandage pill syringe stethoscope crutch wheelchair stretcher passport license
        coupon voucher banknote suitcase trolley
    """,
    "clothes": """
        shirt jacket coat sweater dress skirt hat cap scarf glove sock shoe boot sandal belt
        tie uniform suit blouse vest hood apron raincoat swimsuit sneaker slipper jersey
        cardigan costume mitten
        """,
    "vehicle": """
        car bus truck van train tram taxi bicycle bike motorcycle scooter boat ship ferry
        yacht canoe plane helicopter rocket tractor ambulance wagon cart carriage sled
        submarine jeep skateboard
        kayak raft limousine minibus caravan trailer glider airship
        """,
    "building": """
        house apartment cottage cabin castle palace tower church temple school college
        university library museum theater cinema hospital clinic pharmacy bank office factory
        farm barn garage garden park playground stadium gym pool hotel restaurant cafe bakery
        shop store market supermarket mall bookstore kitchen bathroom bedroom hallway attic
        basement cellar balcony porch classroom laboratory studio warehouse prison village town
        city station airport harbor lighthouse mill cathedral chapel kindergarten arena hall
        lobby cafeteria greenhouse workshop hut shed igloo mansion bungalow skyscraper fortress
        monastery mosque synagogue stable pub diner canteen dormitory gallery aquarium zoo
        circus courtyard pavilion bazaar depot terminal pier marina campsite motel hostel inn
        salon boutique laundromat nursery courtroom auditorium gymnasium pantry loft stairwell
    """,
    "outdoor": """
        street road highway lane path square corner island mountain hill valley river lake pond
        sea ocean forest wood desert field meadow cave cliff beach coast shore bay waterfall
        volcano swamp jungle canyon stream creek orchard vineyard glacier border bridge tunnel
        lagoon marsh prairie plateau ridge peak summit slope trail alley avenue boulevard
        driveway sidewalk pavement roundabout campground riverbank hillside seaside quarry dune
        reef pasture ranch grove thicket clearing oasis cemetery graveyard churchyard backyard
        yard lawn patio terrace
    """,
    "plant": """
        tree flower bush rose tulip daisy lily oak pine maple willow sunflower cactus fern vine
        seed weed palm shrub ivy bamboo lavender orchid daffodil poppy violet dandelion clover
        cedar birch elm hedge reed herb
    """,
    "nature": """
        leaf branch root stone rock pebble cloud star moon rainbow wave planet acorn log twig
        thorn petal blossom puddle breeze boulder crystal fossil iceberg meteor comet galaxy
        horizon sunset sunrise shadow flame spark snowflake snowball raindrop icicle ripple tide
        tornado hurricane earthquake flood drought avalanche thunderstorm blizzard
    """,
    "body": """
        head face eye ear nose mouth lip tooth tongue neck shoulder arm elbow wrist hand finger
        thumb leg knee ankle foot toe back chest stomach heart brain bone muscle cheek chin
        forehead eyebrow throat hip fist heel lung liver kidney rib spine skull jaw nostril
        eyelash eyelid beard mustache freckle scar wound bruise blister fingernail toenail
        belly waist thigh shin
    """,
    "person": """
        man woman child boy girl baby friend neighbor teacher student doctor nurse dentist
        farmer baker cook chef driver pilot sailor soldier officer firefighter artist painter
        singer dancer musician writer author poet actor player coach judge lawyer engineer
        scientist builder carpenter plumber electrician mechanic gardener waiter waitress
        cashier clerk manager boss worker visitor guest tourist traveler passenger customer
        owner stranger king queen prince princess mother father brother sister son daughter
        uncle aunt cousin grandmother grandfather parent husband wife guard guide hunter
        fisherman miner professor director secretary banker barber tailor butcher librarian
        photographer reporter editor journalist architect accountant pharmacist surgeon
        shepherd cowboy sheriff detective teenager toddler adult grandson granddaughter nephew
        niece bride groom captain mayor athlete runner swimmer climber referee lifeguard
        janitor tutor pupil classmate colleague partner roommate landlord volunteer vet
        zookeeper beekeeper blacksmith jeweler florist grocer merchant trader salesman
        saleswoman chemist biologist astronaut astronomer explorer inventor magician clown
        juggler acrobat comedian composer conductor drummer guitarist pianist violinist
        sculptor designer programmer developer technician nanny babysitter housekeeper
        caretaker butler chauffeur courier messenger postman milkman newcomer resident citizen
        villager knight wizard witch giant pirate admiral ranger rancher shopkeeper innkeeper
        goalkeeper bodyguard spy thief burglar prisoner witness boyfriend girlfriend stepmother
        godfather grandchild grandparent twin infant widow bachelor hero champion winner
        beginner expert leader member supporter
        """,
    "text": """
        book novel letter message email note story poem report article newspaper magazine list
        recipe menu receipt form contract diary postcard sign label paragraph sentence chapter
        page essay speech announcement textbook notice invitation address brochure leaflet
        catalog manual guidebook cookbook comic journal biography dictionary encyclopedia atlas
        script headline caption memo telegram certificate diploma petition verse legend myth
        fable sonnet
    """,
    "idea": """
        idea plan question answer problem reason joke dream secret promise decision mistake
        choice chance rule fact opinion suggestion solution riddle excuse complaint request
        offer wish reward rumor theory warning hint clue guess doubt worry belief principle
        method strategy tradition custom habit memory hobby goal task job project mystery
        challenge opportunity proposal argument explanation instruction recommendation
        prediction schedule budget bargain discount deal bet tale instinct skill talent
        ambition attitude feeling thought reaction response
    """,
    "event": """
        party meeting lesson exam test trip journey holiday vacation concert wedding festival
        ceremony class interview show match race game parade contest tournament rehearsal
        performance lecture conference birthday funeral graduation reunion anniversary banquet
        barbecue carnival exhibition premiere auction election debate protest voyage cruise
        expedition excursion tour visit seminar tutorial quiz audition marathon championship
        celebration
    """,
    "song": """
        song tune melody lullaby anthem hymn
        chorus ballad carol jingle symphony opera solo duet rhyme
        """,
    "instrument": """
        piano guitar violin drum flute trumpet harp cello banjo harmonica accordion saxophone
        clarinet trombone
        ukulele tuba oboe bagpipe xylophone tambourine organ bugle
        """,
    "sport_mass": """
        football soccer tennis basketball baseball golf hockey volleyball chess rugby badminton
        swimming cycling skiing boxing wrestling karate judo archery rowing sailing surfing
        skating bowling darts poker checkers softball lacrosse handball polo yoga gymnastics
    """,
    "abstract_mass": """
        music news advice information knowledge help work homework money time weather traffic
        luck patience courage silence noise peace love fun history science art math poetry
        furniture equipment luggage electricity energy progress research space evidence
        training practice freedom justice wisdom beauty happiness sadness anger fear joy hope
        trust respect honesty kindness pride humor laughter sleep rest health safety danger
        power strength speed distance temperature pressure heat darkness gravity nature culture
        language grammar geography biology chemistry physics literature philosophy economics
        politics medicine technology software data gossip mail rubbish garbage trash laundry
        housework shopping cooking baking gardening exercise transport fuel gasoline cash
        income rent
    """,
    "weather_mass": """
        rain snow wind fog sunshine thunder lightning frost hail mist drizzle sleet
        """,
    "material_mass": """
        wood paper metal plastic cotton wool leather sand mud ice oil paint soap dust gold
        silver iron steel copper clay rubber concrete silk granite marble glass cardboard denim
        velvet lace linen nylon wax tar cement gravel straw hay coal charcoal ink glue yarn
        foil chalk bronze brass aluminum tin steam smoke
    """,
}

_IRREGULAR_PLURALS = {
    "mouse": "mice", "goose": "geese", "sheep": "sheep", "deer": "deer", "fish": "fish",
    "moose": "moose", "bison": "bison", "salmon": "salmon", "trout": "trout",
    "shrimp": "shrimp", "calf": "calves", "wolf": "wolves", "man": "men", "woman": "women",
    "child": "children", "person": "people", "foot": "feet", "tooth": "teeth",
    "knife": "knives", "leaf": "leaves", "wife": "wives", "shelf": "shelves",
    "loaf": "loaves", "tomato": "tomatoes", "potato": "potatoes", "cactus": "cacti",
    "octopus": "octopuses", "volcano": "volcanoes", "hero": "heroes", "echo": "echoes",
    "fisherman": "fishermen", "policeman": "policemen", "axe": "axes", "buffalo": "buffaloes",
}

# Transitive verbs and the noun groups their object comes from.
_OBJECT_GROUPS = {
    "a": ("animal",), "f": ("food", "food_mass"), "d": ("drink_mass",), "m": ("meal",),
    "t": ("thing",), "c": ("clothes",), "v": ("vehicle",), "b": ("building",),
    "o": ("outdoor",), "p": ("person",), "x": ("text",), "i": ("idea",), "e": ("event",),
    "g": ("song",), "n": ("instrument",), "s": ("sport_mass",), "l": ("plant",),
    "q": ("abstract_mass",), "z": ("material_mass",),
}

_TRANSITIVE = """
    eat:fm cook:fm cut:ft slice:f chop:f wash:ftcva dry:tc taste:fd drink:d pour:d spill:d
    sip:d serve:fdm order:fdmt buy:fdtcv sell:ftcva bring:fdtx carry:tfx take:tfx send:xt
    receive:xt deliver:xtf find:tax lose:txes hide:tx drop:tf break:t fix:tv repair:tvb
    clean:tbvc paint:tbv build:bt move:tv push:tv pull:tv lift:ta hold:tap touch:ta load:vt
    read:x write:xg print:x sign:x answer:xi explain:ix discuss:ixe remember:ipxse forget:itxe
    understand:ix describe:bopiae visit:bop leave:bot enter:b see:atvbopl watch:apvse
    notice:atpv hear:gpan feed:ap chase:apv follow:pav meet:p call:p help:p thank:p invite:p
    teach:p ask:p tell:p pay:p check:txv count:taf measure:tb weigh:tfa pack:tcf wear:c fold:cx
    iron:c borrow:txvn keep:tax share:ftxi choose:tcfiv prefer:fdtc plant:l water:l pick:lf
    climb:ol cross:o draw:tabpl sing:g play:sng practice:sn learn:gsx like:afdtcvpsgn
    love:afdtpsgq hate:fdtsq want:fdtcva need:tfdvxpq use:tvz bury:t shake:t fetch:t grab:tf
    steal:tvn hit:t kiss:pa hug:pa wake:pa greet:p hire:p warn:p trust:p blame:p believe:p
    forgive:p rescue:pa protect:pab guard:bt photograph:pabolv interview:p recognize:pab
    marry:p lead:pa smell:fld cover:tf decorate:btf scratch:tv burn:tfx heat:fd freeze:fd
    melt:fz mix:fdz stir:fd wrap:tf hang:ct sweep:b mop:b tidy:b rent:bv plan:em organize:em
    cancel:em postpone:e attend:e enjoy:emfdgsq miss:epv win:es solve:i ignore:ipx accept:ix
    refuse:i suggest:i repeat:ixg change:itc finish:xmef start:ex begin:ex continue:ex join:e
    prepare:mfxe search:bo explore:bo study:xsq collect:tlz gather:tlz deliver:xtf examine:tapx
    inspect:tbv admire:pbolt ignore:ipx copy:x translate:x publish:x record:gx mention:ip
    imagine:ip replace:tv return:txv fold:cx install:t unpack:tc wrap:tf test:tv sort:tx
    arrange:lt hide:tx pack:tcf rinse:fc scrub:tb soak:tc season:f sweeten:fd chill:fd warm:fd
    reheat:fm swallow:f chew:f bite:f nibble:f devour:f gulp:d mend:tc sew:c knit:c patch:c
    stitch:c glue:t attach:t connect:t disconnect:t operate:tv adjust:t tune:n upgrade:t
    assemble:t dismantle:t construct:b design:btvc renovate:b demolish:b destroy:tb damage:tvb
    unload:v comfort:p encourage:p congratulate:p praise:p scold:p punish:p reward:p remind:p
    persuade:p convince:p annoy:p amuse:p surprise:p frighten:pa scare:pa disturb:pa bother:p
    respect:p envy:p phone:p contact:p introduce:p welcome:p interrupt:p employ:p train:pa
    treat:pa cure:pa heal:pa bathe:pa tame:a hunt:a trap:a release:a adopt:a stroke:a pet:a
    cuddle:ap memorize:xg recite:xg review:x revise:x edit:x summarize:x underline:x type:x
    delete:x save:xq download:xg upload:x announce:ie report:i reveal:i confirm:ie deny:i
    doubt:i question:ip predict:e guess:i consider:i propose:i reject:i approve:ix support:ip
    oppose:i defend:pbi criticize:ip celebrate:e host:e schedule:e delay:ev rehearse:g
    perform:g compose:g hum:g whistle:g film:pae afford:tv exchange:tc compare:tfv waste:fdq
    spend:q earn:q donate:tcq approach:bo reach:bo surround:b patrol:bo bend:t twist:t roll:t
    bounce:t toss:t swing:t wave:t raise:t lower:t place:t tear:xc rip:xc crush:tf
"""

# Verbs that describe a state: no commands ("please want..."), no "-ing" forms.
_STATIVE = set("""
    like love hate want need prefer believe trust understand recognize know envy doubt afford
    respect deserve owe remember forget notice hear see smell
    """.split())

# Verbs whose object comes from a short list of nouns (each listed in ``_NOUNS``); a verb
# may take several lines.
_TRANSITIVE_LISTED = """
    ride:=bicycle,bike,motorcycle,scooter,horse,pony,camel,skateboard,bus,train,tram,donkey
    row:=boat,canoe,kayak,raft
    paddle:=boat,canoe,kayak,raft
    sail:=boat,ship,yacht,ferry
    land:=plane,helicopter,glider
    launch:=rocket,boat,kite,drone
    light:=candle,lamp,lantern,stove,oven
    milk:=cow,goat,sheep
    shear:=sheep,lamb
    walk:=dog,puppy,horse,pony,goat
    groom:=horse,pony,dog,cat,puppy,kitten
    blow:=balloon,whistle,candle,trumpet,bugle
    drive:=car,bus,truck,van,taxi,tractor,ambulance,jeep,limousine,minibus,train,tram
    park:=car,bus,truck,van,taxi,bike,bicycle,motorcycle,scooter,jeep,caravan,trailer
    steer:=car,boat,ship,truck,bus,wheelchair,bicycle
    tow:=car,truck,van,boat,caravan,trailer
    crash:=car,bus,truck,van,bike,bicycle,plane,drone
    board:=bus,train,plane,ship,ferry,tram,boat
    overtake:=car,bus,truck,van,tractor,bicycle,taxi
    bake:=cake,bread,pie,cookie,muffin,biscuit,pizza,potato,scone,brownie,cupcake,loaf,tart
    bake:=pastry
    boil:=egg,potato,water,milk,rice,pasta,carrot,pea,bean,noodle,soup
    fry:=egg,sausage,potato,onion,mushroom,bacon,fish,steak,rice,pancake,tofu
    peel:=apple,banana,orange,potato,carrot,onion,pear,mango,tangerine,cucumber,kiwi,egg
    roast:=potato,beef,pork,turkey,chicken,chestnut,peanut,pepper,pumpkin
    grill:=steak,sausage,burger,fish,salmon,corn,pepper,mushroom,tofu,shrimp
    toast:=bread,bagel,muffin,almond,walnut
    mash:=potato,banana,avocado,pea,pumpkin,bean
    sprinkle:=sugar,salt,pepper,cinnamon,flour,sand,water,nutmeg,paprika,parsley
    squeeze:=lemon,lime,orange,grapefruit,sponge,tube,ball,pillow
    spread:=butter,jam,honey,cream,mustard,ketchup,mayonnaise,hummus,sand,blanket,tablecloth
    spread:=map,news,rumor
    grate:=cheese,carrot,ginger,nutmeg,potato,chocolate,zucchini
    sharpen:=pencil,knife,axe,saw,chisel,crayon
    polish:=shoe,boot,car,mirror,ring,table,spoon,trophy,medal,window
    tighten:=screw,bolt,belt,rope,lid,tie
    loosen:=screw,bolt,belt,rope,lid,tie
    unscrew:=lid,bolt,screw,bulb,cap
    hammer:=nail
    charge:=phone,laptop,battery,tablet,camera,drone,car
    unplug:=fridge,lamp,television,computer,laptop,charger,heater,fan,printer,toaster,kettle
    tie:=rope,ribbon,scarf,tie,boat,horse,balloon
    untie:=rope,ribbon,scarf,tie,boat,horse,balloon
    stack:=plate,box,chair,book,brick,crate,tile,coin,card,cup,bowl
    crumple:=letter,note,page,receipt,form,envelope,napkin,poster
    shatter:=glass,mirror,window,vase,plate,bottle,cup,bulb
    crack:=egg,walnut,hazelnut,peanut,window,mirror,plate,joke
    smash:=window,plate,vase,glass,bottle,mirror,cup
    dust:=shelf,table,lamp,picture,frame,bookcase,piano,desk,cabinet
    vacuum:=carpet,rug,sofa,couch,mattress,car,bedroom,hallway,office,kitchen
    wipe:=table,desk,window,mirror,plate,bench,bowl,face,hand
    fill:=bucket,bottle,jar,cup,glass,bowl,box,bag,basket,kettle,pot,suitcase,form
    empty:=bucket,bottle,jar,cup,glass,bowl,box,bag,basket,kettle,pot,suitcase,drawer
    open:=door,window,gate,box,drawer,bottle,jar,suitcase,bag,cupboard,closet,fridge,oven
    open:=envelope,parcel,package,book,letter,umbrella,curtain,tent,cabinet,wardrobe
    close:=door,window,gate,box,drawer,bottle,jar,suitcase,bag,cupboard,closet,fridge,oven,book
    close:=umbrella,curtain,tent,cabinet,wardrobe,shop,store,office
    lock:=door,gate,window,car,bike,bicycle,suitcase,drawer,cabinet,box,garage,shed,office
    lock:=house,cupboard
    unlock:=door,gate,window,car,bike,bicycle,suitcase,drawer,cabinet,box,garage,shed,office
    unlock:=house,cupboard
    throw:=ball,stone,rock,pebble,snowball,coin,feather,shell,acorn
    kick:=ball,door,stone,pebble,tire,box,bucket
    catch:=ball,fish,mouse,butterfly,frog,rabbit,bus,train,thief,crab,mosquito
"""

# Verbs without an object. P: people do it, A: animals do it.
_INTRANSITIVE = """
    arrive:P laugh:P smile:P cry:PA shout:P whisper:P talk:P speak:P listen:PA wait:PA
    rest:PA work:P study:P travel:PA return:PA agree:P complain:P argue:P relax:PA hurry:PA
    dance:P sing:P pray:P vote:P knock:P cough:PA sneeze:PA yawn:PA sigh:P frown:P nod:P
    shiver:PA sleep:PA sit:PA stand:PA walk:PA run:PA swim:PA jump:PA fall:PA climb:PA
    hide:PA win:P lose:P stay:PA apologize:P celebrate:P cheer:P clap:P exercise:P jog:P
    recover:PA retire:P shop:P stumble:PA wander:PA whistle:P yell:P giggle:P blink:PA
    breathe:PA hesitate:PA disappear:PA appear:PA panic:PA struggle:PA succeed:P fail:P
    improve:PA graduate:P kneel:P bow:P pause:PA escape:PA play:PA eat:PA drink:PA
    listen:PA crawl:PA fly:A wake:PA cook:P read:P write:P paint:P draw:P travel:PA
    blush:P faint:PA gasp:PA groan:P moan:P mumble:P murmur:P scream:PA sob:P sulk:P
    tremble:PA wink:P wave:P grin:P snore:PA limp:PA hop:PA skip:P march:P tiptoe:P
    stroll:P sprint:PA dive:PA float:PA drift:PA glide:A soar:A hover:A nest:A graze:A
    hibernate:A migrate:A settle:PA vanish:PA depart:P commute:P volunteer:P camp:P hike:P
    ski:P skate:P surf:P sail:P row:P cycle:P train:P compete:P participate:P gossip:P
    chat:P joke:P meditate:P concentrate:P daydream:P worry:P insist:P protest:P obey:PA
    behave:PA misbehave:PA cooperate:P sneak:PA
    """

_ANIMAL_SOUNDS = {
    "dog": "bark growl howl", "puppy": "bark", "wolf": "howl growl", "cat": "purr hiss",
    "kitten": "purr", "lion": "roar", "tiger": "roar growl", "bear": "growl roar",
    "snake": "hiss", "goose": "hiss", "bird": "chirp sing", "sparrow": "chirp",
    "robin": "chirp sing", "bee": "buzz", "mosquito": "buzz", "mouse": "squeak",
    "sheep": "bleat", "lamb": "bleat", "goat": "bleat", "cow": "moo", "owl": "hoot",
    "duck": "quack", "horse": "neigh", "rooster": "crow", "frog": "croak", "pig": "grunt",
}

_IRREGULAR_VERBS = {  # base: (past, past participle)
    "begin": ("began", "begun"), "bite": ("bit", "bitten"), "blow": ("blew", "blown"),
    "break": ("broke", "broken"), "bring": ("brought", "brought"), "build": ("built", "built"),
    "buy": ("bought", "bought"), "catch": ("caught", "caught"), "choose": ("chose", "chosen"),
    "come": ("came", "come"), "cut": ("cut", "cut"), "dig": ("dug", "dug"),
    "do": ("did", "done"), "draw": ("drew", "drawn"), "drink": ("drank", "drunk"),
    "drive": ("drove", "driven"), "eat": ("ate", "eaten"), "fall": ("fell", "fallen"),
    "feed": ("fed", "fed"), "feel": ("felt", "felt"), "fight": ("fought", "fought"),
    "find": ("found", "found"), "fly": ("flew", "flown"), "forget": ("forgot", "forgotten"),
    "forgive": ("forgave", "forgiven"), "freeze": ("froze", "frozen"), "get": ("got", "got"),
    "give": ("gave", "given"), "go": ("went", "gone"), "grow": ("grew", "grown"),
    "hang": ("hung", "hung"), "have": ("had", "had"), "hear": ("heard", "heard"),
    "hide": ("hid", "hidden"), "hit": ("hit", "hit"), "hold": ("held", "held"),
    "keep": ("kept", "kept"), "know": ("knew", "known"), "lead": ("led", "led"),
    "leave": ("left", "left"), "lend": ("lent", "lent"), "let": ("let", "let"),
    "lose": ("lost", "lost"), "make": ("made", "made"), "meet": ("met", "met"),
    "pay": ("paid", "paid"), "put": ("put", "put"), "read": ("read", "read"),
    "ride": ("rode", "ridden"), "ring": ("rang", "rung"), "run": ("ran", "run"),
    "say": ("said", "said"), "see": ("saw", "seen"), "sell": ("sold", "sold"),
    "send": ("sent", "sent"), "shake": ("shook", "shaken"), "sing": ("sang", "sung"),
    "sit": ("sat", "sat"), "sleep": ("slept", "slept"), "speak": ("spoke", "spoken"),
    "spend": ("spent", "spent"), "stand": ("stood", "stood"), "steal": ("stole", "stolen"),
    "sweep": ("swept", "swept"), "swim": ("swam", "swum"), "take": ("took", "taken"),
    "teach": ("taught", "taught"), "tell": ("told", "told"), "think": ("thought", "thought"),
    "throw": ("threw", "thrown"), "understand": ("understood", "understood"),
    "wake": ("woke", "woken"), "wear": ("wore", "worn"), "win": ("won", "won"),
    "write": ("wrote", "written"), "kneel": ("knelt", "knelt"), "crow": ("crowed", "crowed"),
    "bend": ("bent", "bent"), "swing": ("swung", "swung"), "tear": ("tore", "torn"),
    "light": ("lit", "lit"), "spread": ("spread", "spread"), "shear": ("sheared", "shorn"),
    "dive": ("dove", "dived"), "sneak": ("snuck", "snuck"),
    "sew": ("sewed", "sewn"), "overtake": ("overtook", "overtaken"),
}

# Verbs that double their last consonant before -ed and -ing.
_DOUBLING = set("""
    stop drop plan shop hug grab rob beg nod jog tap wrap chop clap trim skip slip step ship
    grin scrub rub pat knit admit commit permit prefer refer occur regret control sip stir
    dig swim run sit begin get put cut hit set let forget win mop spin sob hop chat pet
    hum
    """.split())

_ADJECTIVES = {
    "color": "red blue green yellow purple pink brown black white gray golden silver",
    "general": """
        big small large tiny huge little long short wide narrow thick thin heavy light old new
        clean dirty wet dry hot cold warm cool soft hard smooth rough sharp round square flat
        empty full broken shiny plain fancy cheap expensive strong weak loud quiet bright dark
        beautiful ugly pretty lovely nice fine simple strange odd famous favorite special
        normal perfect useful useless ordinary modern ancient wooden sticky slippery dusty
        muddy rusty fragile solid hollow loose tight spare extra enormous neat tidy messy
        comfortable precious valuable colorful striped spotted elegant shabby sturdy
        gigantic miniature deep shallow curved straight crooked bent folded torn cracked
        damaged vintage fashionable stylish gorgeous magnificent spotless filthy greasy damp
        soaked boiling transparent glowing sparkling glittering dull faded bold pale vivid
        bulky compact portable electric digital mechanical automatic handmade imported
        secondhand waterproof silent smelly fragrant furry fluffy hairy metallic
        """,
    "person": """
        happy sad angry tired hungry thirsty sleepy busy lonely brave shy proud kind friendly
        rude polite honest clever smart wise foolish silly funny serious calm nervous worried
        excited bored curious careful careless patient lazy generous cheerful gentle noisy sick
        healthy young grateful jealous anxious confident surprised confused scared upset
        embarrassed helpful stubborn talented famous cautious gloomy jolly grumpy sensible
        ambitious adventurous affectionate charming creative energetic enthusiastic faithful
        fearless frank humble loyal modest optimistic pessimistic practical reliable sincere
        sympathetic thoughtful tough witty arrogant bossy clumsy cruel greedy impatient mean
        moody naughty selfish sneaky vain restless drowsy exhausted relaxed delighted thrilled
        amazed astonished disappointed frustrated furious terrified frightened ashamed guilty
        innocent lucky unlucky elderly skinny slim plump handsome muscular bald blond wealthy
        hopeful
        """,
    "food": """
        fresh sweet sour bitter salty spicy delicious tasty ripe raw juicy crispy crunchy
        creamy stale frozen homemade organic warm hot cold tender greasy bland sugary savory
        smoky chewy soggy mushy moldy rotten overcooked burnt roasted grilled fried baked
        boiled steamed sliced chopped mashed whole leftover nutritious peppery fizzy iced
        """,
    "place": """
        quiet busy crowded empty peaceful noisy beautiful dark cozy spacious tiny huge modern
        ancient dusty sunny shady windy remote local nearby distant narrow steep muddy rocky
        sandy snowy icy foggy lovely famous old new crowded deserted gloomy bright
        historic picturesque scenic haunted abandoned flooded polluted overcrowded
        lively vibrant rural urban coastal tropical hilly grassy leafy wooded swampy
        """,
    "abstract": """
        good bad great important interesting boring difficult easy simple clever strange
        surprising terrible wonderful excellent awful brilliant silly obvious clear useful
        serious funny sad exciting dangerous safe risky fair unfair reasonable popular private
        public official final real true false brief long short new old unusual complicated
        ridiculous absurd logical original fantastic amazing incredible
        unbelievable remarkable typical rare common urgent essential necessary optional minor
        major temporary permanent confidential accurate correct wrong precise vague detailed
        shocking touching memorable hilarious tragic mysterious puzzling promising hopeless
        pointless formal casual recent annual weekly daily successful disastrous complete
        incomplete
        """,
    "weather": "sunny cloudy rainy windy foggy snowy stormy humid dry hot cold warm cool mild",
}

_ADVERBS_MANNER = """
    quickly slowly carefully quietly loudly happily sadly angrily gently softly suddenly
    finally easily badly calmly proudly politely nervously patiently eagerly silently secretly
    openly honestly clearly immediately eventually cheerfully bravely kindly wisely rapidly
    briskly lazily noisily gracefully clumsily awkwardly confidently curiously firmly
    fiercely foolishly generously gladly hastily hungrily innocently joyfully loyally
    mysteriously neatly obediently perfectly playfully promptly reluctantly roughly rudely
    safely seriously sharply shyly smoothly sleepily sternly swiftly tenderly thoughtfully
    tightly truthfully warmly wearily wildly willingly anxiously boldly carelessly
    cautiously closely correctly
    """.split()
_WEATHER_NOUN_ADJECTIVES = ("heavy", "light", "strong", "cold", "warm", "gentle",
                            "terrible", "strange", "sudden", "bright", "thick", "icy", "loud")
_ADVERBS_FREQ = "always never often sometimes usually rarely seldom occasionally".split()
_TIME_PHRASES = """
    yesterday|today|tomorrow|tonight|this morning|this afternoon|this evening|last night|
    last week|last month|last year|next week|next month|next year|every day|every morning|
    on the weekend|at night|in the morning|in the evening|in the afternoon|after lunch|
    before dinner|after school|after work|two days ago|an hour ago|a long time ago|
    once again|right now|later today|early this morning|late last night|during the storm|
    during the holidays|before breakfast|after the meeting|over the summer|in the winter|
    in the spring|in the autumn|in the summer
    """
_PREPOSITIONS_PLACE = ("in", "near", "behind", "outside", "inside", "next to", "across from",
                       "in front of", "beside", "opposite")
_PREPOSITIONS_OUTDOOR = ("near", "by", "across", "along", "beside", "beyond", "past",
                         "over", "on the other side of", "at the edge of")
_PREPOSITIONS_THING = ("on", "under", "behind", "next to", "beside", "inside", "near",
                       "on top of", "underneath")

_MONTHS = ("January February March April May June July August September October November "
           "December").split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_ORDINALS_1_19 = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
                  "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
                  "nineteenth").split()
_TENS_ORDINALS = {20: "twentieth", 30: "thirtieth"}
_UNITS = ("minute hour day week month year meter kilometer mile kilogram gram liter "
          "degree step page floor kilometer").split()
_CURRENCIES = (("dollar", "cent"), ("pound", "penny"), ("euro", "cent"))

_PRONOUNS = {  # subject, object, possessive, third person singular
    "I": ("I", "me", "my", False), "you": ("you", "you", "your", False),
    "he": ("he", "him", "his", True), "she": ("she", "her", "her", True),
    "we": ("we", "us", "our", False), "they": ("they", "them", "their", False),
}
_POSSESSIVES = ("my", "your", "his", "her", "our", "their")
_MODALS = ("can", "could", "should", "might", "must", "would")

# Words that the templates use literally (function words, fixed phrases).
_TEMPLATE_WORDS = """
    the a an some any this that these those every each another no many few several all
    of to in on at by for with from into onto about over under near behind beside after
    before during until since without inside outside across along around through past
    beyond between above below opposite front top edge side other next
    and but or so because when while if although unless then than as that who which what
    where why how whose whom
    is are was were am be been being do does did done have has had will would can could
    should might must shall
    isn't aren't wasn't weren't don't doesn't didn't won't can't couldn't shouldn't
    wouldn't haven't hasn't it's i'm you're we're they're he's she's that's there's let's
    i'll we'll you'll they'll i've we've i'd o'clock
    i me my mine you your yours he him his she her hers we us our ours they them their
    theirs it its myself yourself himself herself ourselves themselves someone something
    everyone everything nothing nobody anyone anything somewhere everywhere here there
    not very really quite too rather so just still also even only almost nearly already
    yet again soon now later today tomorrow yesterday tonight ago once twice
    please yes thanks thank hello goodbye good morning afternoon evening night okay sorry
    excuse welcome
    going gone go went come came back away up down out off home well right left
    say said says think thought know knew believe believed hope hoped wish wished
    seem seemed seems look looked looks sound sounded sounds feel felt feels
    there it enough more most much little less least lot lots plenty half quarter
    number code password pin seat room gate platform flight bus route extension
    phone reference account order ticket locker
    born moved opened closed started finished built leaves arrives starts begins ends
    opens closes departs lands
    costs cost price paid about exactly only nearly
    away old long wide tall high deep far miles minutes hours
    degrees outside inside percent noon midnight
    week weekend month year day summer winter spring autumn
    weather raining snowing cloudy sunny
    same different best worst better worse
    remember forget tell told ask asked wonder wondered
    hurry stop wait look listen help come sit stand
    country deadline depart dial get got happened hope hopes lasted put ready score
    temperature thinks turned rain rained raining snow snowed snowing worse kept ruined
    woke bed house station breakfast work stopped started came
    """


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    if noun.endswith("man"):
        return noun[:-3] + "men"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    if noun.endswith("fe") and noun not in ("safe", "cafe"):
        return noun[:-2] + "ves"
    return noun + "s"


def _past(verb: str) -> str:
    if verb in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[verb][0]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _participle(verb: str) -> str:
    if verb in _IRREGULAR_VERBS:
        return _IRREGULAR_VERBS[verb][1]
    return _past(verb)


def _third(verb: str) -> str:
    if verb == "have":
        return "has"
    if verb in ("do", "go"):
        return verb + "es"
    if verb.endswith(("s", "x", "z", "ch", "sh")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")) and verb != "be":
        return verb[:-1] + "ing"
    if verb in _DOUBLING:
        return verb + verb[-1] + "ing"
    return verb + "ing"


_AN_ANYWAY = {"hour", "honest", "honor", "heir"}
_A_ANYWAY = ("uni", "use", "usu", "uten", "euro", "one", "ukul")


def _article(word: str) -> str:
    w = word.lower()
    if w in _AN_ANYWAY:
        return "an"
    if w.startswith(_A_ANYWAY):
        return "a"
    return "an" if w[0] in "aeiou" else "a"


def _words(block: str) -> list:
    seen = []
    for w in block.split():
        if w not in seen:
            seen.append(w)
    return seen


class _Lexicon:
    def __init__(self):
        self.nouns = {group: _words(text) for group, text in _NOUNS.items()}
        self.mass = {g for g in self.nouns if g.endswith("_mass")}
        self.home = {}  # noun -> the first group that lists it
        for group, nouns in self.nouns.items():
            for noun in nouns:
                self.home.setdefault(noun, group)
        self.adjectives = {group: _words(text) for group, text in _ADJECTIVES.items()}
        self.transitive = {}
        for item in _TRANSITIVE.split():
            verb, codes = item.split(":")
            groups = []
            for code in codes:
                for g in _OBJECT_GROUPS[code]:
                    if g not in groups:
                        groups.append(g)
            self.transitive[verb] = tuple(groups)
        for item in _TRANSITIVE_LISTED.split():
            verb, listed = item.split(":=")
            nouns = listed.split(",")
            unknown = [n for n in nouns if n not in self.home]
            if unknown:
                raise AssertionError(f"{verb}: nouns not in the lexicon: {unknown}")
            self.nouns.setdefault("=" + verb, []).extend(nouns)
            self.transitive[verb] = ("=" + verb,)
        self.transitive_verbs = list(self.transitive)
        self.action_verbs = [v for v in self.transitive_verbs if v not in _STATIVE]
        self.intransitive = {"P": [], "A": []}
        for item in _INTRANSITIVE.split():
            verb, who = item.split(":")
            for w in who:
                if verb not in self.intransitive[w]:
                    self.intransitive[w].append(verb)
        self.time_phrases = [" ".join(p.split()) for p in _TIME_PHRASES.split("|")]
        self.sounds = {k: v.split() for k, v in _ANIMAL_SOUNDS.items()}

    def adjectives_for(self, group: str) -> list:
        if group == "person":
            return self.adjectives["person"]
        if group == "animal":
            return self.adjectives["person"][:30] + self.adjectives["color"] + \
                self.adjectives["general"][:12]
        if group in ("food", "food_mass", "drink_mass", "meal"):
            return self.adjectives["food"]
        if group in ("building", "outdoor"):
            return self.adjectives["place"]
        if group in ("idea", "event", "text", "song", "abstract_mass"):
            return self.adjectives["abstract"]
        if group == "weather_mass":
            return _WEATHER_NOUN_ADJECTIVES
        return self.adjectives["general"] + self.adjectives["color"]


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    return _Lexicon()


# --------------------------------------------------------------------------------------------
# Numbers, times, dates.
# --------------------------------------------------------------------------------------------

def ordinal_words(n: int) -> str:
    """1 -> "first", 22 -> "twenty second" (1 to 99)."""
    if not 1 <= n <= 99:
        raise ValueError("ordinal_words handles 1 to 99")
    if n < 20:
        return _ORDINALS_1_19[n - 1]
    tens, ones = divmod(n, 10)
    if ones == 0:
        return number_to_words(n)[:-1] + "ieth"
    return number_to_words(tens * 10) + " " + _ORDINALS_1_19[ones - 1]


def year_words(year: int) -> str:
    """Read a year as people do: 1984 -> "nineteen eighty four", 2007 -> "two thousand seven"."""
    if 2000 <= year <= 2009:
        return number_to_words(year)
    high, low = divmod(year, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    if low < 10:
        return number_to_words(high) + " oh " + number_to_words(low)
    return number_to_words(high) + " " + number_to_words(low)


def time_words(hour: int, minute: int, style: int = 0) -> str:
    """A clock time in words (12-hour clock): "seven fifteen", "half past nine"..."""
    h12 = hour % 12 or 12
    if minute == 0:
        if style == 1 and hour in (0, 12):
            return "midnight" if hour == 0 else "noon"
        return number_to_words(h12) + " o'clock"
    if style == 1 and minute in (15, 30, 45):
        if minute == 15:
            return "a quarter past " + number_to_words(h12)
        if minute == 30:
            return "half past " + number_to_words(h12)
        return "a quarter to " + number_to_words(hour % 12 + 1)
    if minute < 10:
        return number_to_words(h12) + " oh " + number_to_words(minute)
    return number_to_words(h12) + " " + number_to_words(minute)


# --------------------------------------------------------------------------------------------
# The grammar.
# --------------------------------------------------------------------------------------------

class _Grammar:
    """Builds one sentence from a ``random.Random``; every choice comes from that generator."""

    def __init__(self, rng: random.Random):
        self.r = rng
        self.lex = _lexicon()

    # ----- small helpers
    def pick(self, seq):
        return seq[self.r.randrange(len(seq))]

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def number(self, low: int, high: int) -> int:
        return self.r.randint(low, high)

    def small_number(self) -> int:
        roll = self.r.random()
        if roll < 0.6:
            return self.r.randint(2, 12)
        if roll < 0.9:
            return self.r.randint(13, 99)
        return self.r.randint(100, 999)

    # ----- noun phrases
    def noun(self, group: str) -> str:
        return self.pick(self.lex.nouns[group])

    def adjective(self, group: str) -> str:
        return self.pick(self.lex.adjectives_for(group))

    def noun_phrase(self, group: str, *, allow_plural=True, definite_bias=0.5,
                    adjective_p=0.35, modifiers=True) -> tuple:
        """Returns (text, plural)."""
        noun = self.noun(group)
        group = self.lex.home[noun]
        self.last_group = group
        mass = group in self.lex.mass
        plural = (not mass) and allow_plural and self.chance(0.3)
        head = _plural(noun) if plural else noun
        adjs = []
        if modifiers and self.chance(adjective_p):
            adjs.append(self.adjective(group))
            if self.chance(0.15):
                second = self.adjective(group)
                if second != adjs[0]:
                    adjs.insert(0, second)
        phrase = " ".join(adjs + [head])
        if mass:
            det = self.pick(("the", "the", "some", "my", "our", "this", "that", "their",
                             "no", "a lot of", "a little", "")) \
                if not self.chance(definite_bias) else "the"
        elif plural:
            if self.chance(0.1):
                det = number_to_words(self.r.randint(2, 20) if self.chance(0.8)
                                      else self.small_number())
            else:
                det = self.pick(("the", "the", "some", "these", "those", "my", "your", "our",
                                 "their", "his", "her", "many", "a few", "several", "all the",
                                 "two", "three"))
        else:
            if self.chance(definite_bias):
                det = "the"
            else:
                det = self.pick(("a", "a", "the", "my", "your", "his", "her", "our",
                                 "their", "this", "that", "every", "another", "one"))
            if det == "a":
                det = _article(phrase)
        text = (det + " " + phrase).strip()
        return text, plural

    def place_phrase(self) -> str:
        roll = self.r.random()
        if roll < 0.45:
            np_, _ = self.noun_phrase("building", allow_plural=False, definite_bias=0.8,
                                      adjective_p=0.2)
            return self.pick(_PREPOSITIONS_PLACE) + " " + np_
        if roll < 0.75:
            np_, _ = self.noun_phrase("outdoor", allow_plural=False, definite_bias=0.85,
                                      adjective_p=0.2)
            return self.pick(_PREPOSITIONS_OUTDOOR) + " " + np_
        np_, _ = self.noun_phrase("thing", allow_plural=False, definite_bias=0.8,
                                  adjective_p=0.15)
        return self.pick(_PREPOSITIONS_THING) + " " + np_

    def time_phrase(self) -> str:
        roll = self.r.random()
        if roll < 0.65:
            return self.pick(self.lex.time_phrases)
        if roll < 0.8:
            return "on " + self.pick(_WEEKDAYS)
        if roll < 0.9:
            return "in " + self.pick(_MONTHS)
        return "at " + self.clock()

    def subject(self, animals=True) -> tuple:
        """Returns (text, third_singular, kind) with kind "P" (people) or "A" (animals)."""
        roll = self.r.random()
        if roll < 0.4:
            key = self.pick(list(_PRONOUNS))
            subj, _, _, third = _PRONOUNS[key]
            return subj, third, "P"
        if animals and roll < 0.52:
            text, plural = self.noun_phrase("animal", definite_bias=0.6, adjective_p=0.3)
            return text, not plural, "A"
        text, plural = self.noun_phrase("person", definite_bias=0.45, adjective_p=0.25)
        if text.startswith("every "):
            plural = False
        return text, not plural, "P"

    def object_phrase(self, verb: str) -> str:
        group = self.pick(self.lex.transitive[verb])
        text, _ = self.noun_phrase(group, definite_bias=0.55)
        if self.last_group in ("thing", "food", "clothes") and self.chance(0.08):
            text += " " + self.place_phrase()
        return text

    # ----- verb phrases
    def be(self, subj: str, third: bool, tense: str) -> str:
        if tense == "present":
            return "am" if subj == "I" else ("is" if third else "are")
        return "was" if (subj == "I" or third) else "were"

    def verb_group(self, verb: str, subj: str, third: bool) -> str:
        """Conjugates ``verb`` for the subject in a random tense, aspect or modality."""
        roll = self.r.random()
        if verb in _STATIVE and 0.64 <= roll < 0.75:
            roll = 0.0  # no progressive form for a state
        if roll < 0.36:
            return _past(verb)
        if roll < 0.52:
            return _third(verb) if third else verb
        if roll < 0.6:
            return "will " + verb
        if roll < 0.64:
            return self.be(subj, third, "present") + " going to " + verb
        if roll < 0.7:
            return self.be(subj, third, "present") + " " + _gerund(verb)
        if roll < 0.75:
            return self.be(subj, third, "past") + " " + _gerund(verb)
        if roll < 0.8:
            return ("has " if third else "have ") + _participle(verb)
        if roll < 0.88:
            return self.pick(_MODALS) + " " + verb
        if roll < 0.94:
            return "didn't " + verb
        if roll < 0.97:
            return ("doesn't " if third else "don't ") + verb
        return self.pick(("won't", "can't", "couldn't", "shouldn't")) + " " + verb

    def extras(self, p_place=0.3, p_time=0.3, p_manner=0.12) -> list:
        tail = []
        if self.chance(p_place):
            tail.append(self.place_phrase())
        if self.chance(p_manner):
            tail.append(self.pick(_ADVERBS_MANNER))
        if self.chance(p_time):
            tail.append(self.time_phrase())
        return tail

    # ----- clauses
    def transitive_clause(self, extras=True) -> str:
        subj, third, kind = self.subject()
        verbs = self.lex.transitive_verbs
        verb = self.pick(verbs)
        if kind == "A":
            verb = self.pick(("see", "chase", "follow", "eat", "drink", "find", "like", "hear",
                              "smell", "catch", "watch", "hide", "want", "carry"))
        obj = self.object_phrase(verb)
        words = [subj, self.verb_group(verb, subj, third), obj]
        if extras:
            words += self.extras()
        return " ".join(words)

    def intransitive_clause(self, extras=True) -> str:
        subj, third, kind = self.subject()
        if kind == "A" and self.chance(0.5):
            noun = subj.split()[-1]
            singular = next((k for k in self.lex.sounds if k == noun or _plural(k) == noun),
                            None)
            verb = self.pick(self.lex.sounds[singular]) if singular else \
                self.pick(self.lex.intransitive["A"])
        else:
            verb = self.pick(self.lex.intransitive[kind])
        words = [subj, self.verb_group(verb, subj, third)]
        if extras:
            words += self.extras(0.4, 0.35, 0.2)
        return " ".join(words)

    def copula_clause(self) -> str:
        group = self.pick(("thing", "food", "food_mass", "building", "outdoor", "person",
                           "animal", "idea", "event", "text", "clothes", "vehicle", "meal",
                           "drink_mass", "abstract_mass", "weather_mass", "material_mass"))
        subj, plural = self.noun_phrase(group, definite_bias=0.7, adjective_p=0.15)
        if subj.split()[0] in ("no", "a", "an", "every", "another", "one", "a lot of"):
            subj = "the " + " ".join(subj.split()[1:])
            if subj.startswith("the lot of"):
                subj = "the " + subj.split()[-1]
        tense = "present" if self.chance(0.6) else "past"
        be = self.be("it", not plural, tense)
        if self.chance(0.12):
            be += " not" if self.chance(0.5) else ""
            be = be.replace("is not", "isn't").replace("are not", "aren't") \
                .replace("was not", "wasn't").replace("were not", "weren't")
        degree = self.pick(("", "", "", "very ", "really ", "quite ", "too ", "so ",
                            "rather ", "a little ", "always "))
        return f"{subj} {be} {degree}{self.adjective(group)}"

    # ----- sentence templates (each returns text without final punctuation and a mark)
    def t_statement(self):
        if self.chance(0.08):
            # "<subject> <often> <verb> <object>": simple past or present only.
            subj, third, _ = self.subject(animals=False)
            verb = self.pick(self.lex.transitive_verbs)
            form = _past(verb) if self.chance(0.4) else (_third(verb) if third else verb)
            tail = " ".join(self.extras(0.3, 0.0, 0.0))
            return (f"{subj} {self.pick(_ADVERBS_FREQ)} {form} {self.object_phrase(verb)} "
                    f"{tail}"), "."
        front = self.time_phrase() + ", " if self.chance(0.12) else ""
        return front + self.transitive_clause(), "."

    def t_intransitive(self):
        return self.intransitive_clause(), "."

    def t_copula(self):
        return self.copula_clause(), "."

    def t_yes_no(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        verb = self.pick(self.lex.transitive_verbs)
        obj = self.object_phrase(verb)
        tail = " ".join(self.extras(0.25, 0.25, 0.0))
        if roll < 0.35:
            aux = "did"
        elif roll < 0.55:
            aux = "does" if third else "do"
        elif roll < 0.7:
            aux = "will"
        else:
            aux = self.pick(("can", "could", "should", "would", "might"))
        return " ".join(w for w in (aux, subj, verb, obj, tail) if w), "?"

    def t_wh_question(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        if roll < 0.2:
            obj, _ = self.noun_phrase("thing", allow_plural=False, definite_bias=0.9)
            verb = self.pick(("put", "leave", "find", "hide", "buy", "keep"))
            return f"where did {subj} {verb} {obj}", "?"
        if roll < 0.35:
            group = self.pick(("animal", "food", "thing", "person", "vehicle", "clothes",
                               "plant", "text"))
            noun = _plural(self.noun(group))
            verb = self.pick([v for v, g in self.lex.transitive.items() if group in g])
            aux = self.pick(("did", "will", "can", "does" if third else "do"))
            return f"how many {noun} {aux} {subj} {verb}", "?"
        if roll < 0.5:
            clause = self.copula_clause()
            return "why " + self._invert_copula(clause), "?"
        if roll < 0.62:
            vehicle = self.noun("vehicle")
            verb = self.pick(("leave", "arrive", "stop here", "come back", "depart"))
            aux = self.pick(("does the", "will the", "did the"))
            return f"when {aux} {vehicle} {verb}", "?"
        if roll < 0.76:
            verb = self.pick(self.lex.transitive_verbs)
            obj = self.object_phrase(verb)
            return f"who {_past(verb)} {obj}", "?"
        if roll < 0.88:
            group = self.pick(("food", "thing", "clothes", "vehicle", "text", "song"))
            noun = self.noun(group)
            verb = self.pick([v for v, g in self.lex.transitive.items() if group in g])
            return f"which {noun} {self.pick(('did', 'should', 'will'))} {subj} {verb}", "?"
        verb = self.pick(self.lex.transitive_verbs)
        obj = self.object_phrase(verb)
        return f"what {self.pick(('did', 'will', 'can'))} {subj} {verb} with {obj}", "?"

    def _invert_copula(self, clause: str) -> str:
        words = clause.split()
        for i, w in enumerate(words):
            if w in ("is", "are", "was", "were", "isn't", "aren't", "wasn't", "weren't"):
                rest = [x for x in words[i + 1:] if x != "not"]
                return " ".join([w] + words[:i] + rest)
        return clause

    def t_imperative(self):
        verb = self.pick(self.lex.action_verbs)
        obj = self.object_phrase(verb)
        tail = self.extras(0.3, 0.25, 0.1)
        roll = self.r.random()
        if roll < 0.35:
            head = "please " + verb
        elif roll < 0.5:
            head = "don't " + verb
        elif roll < 0.62:
            head = "let's " + verb
        elif roll < 0.7:
            head = "never " + verb
        else:
            head = verb
        return " ".join([head, obj] + tail), self.pick((".", ".", ".", "!"))

    def t_short(self):
        roll = self.r.random()
        if roll < 0.3:
            verb = self.pick(self.lex.action_verbs)
            noun = self.noun(self.pick(self.lex.transitive[verb]))
            if self.lex.home[noun] in self.lex.mass:
                return f"{verb} the {noun}", "."
            return f"{verb} {self.pick(('the', 'this', 'that', 'my', 'your'))} {noun}", "."
        if roll < 0.55:
            group = self.pick(("food", "thing", "animal", "plant", "clothes", "vehicle",
                               "building"))
            return f"{self.adjective(group)} {_plural(self.noun(group))}", \
                self.pick((".", "!", "?"))
        if roll < 0.7:
            verb = self.pick(self.lex.intransitive["P"])
            lead = self.pick(("please", "just", "now", "don't", "let's"))
            return f"{lead} {verb}", self.pick((".", "!"))
        if roll < 0.85:
            noun = self.noun(self.pick(("person", "animal", "vehicle", "thing")))
            where = self.pick(("here", "there", "gone", "back", "outside", "inside", "late",
                               "early", "ready"))
            return f"the {noun} {self.pick(('is', 'was'))} {where}", "."
        greeting = self.pick(("good morning", "good afternoon", "good evening", "good night",
                              "thank you", "thanks again", "see you", "welcome back",
                              "excuse me", "hello again"))
        noun = self.noun("person")
        return f"{greeting} {self.pick(('', 'my '))}{noun}".replace("  ", " "), \
            self.pick((".", "!"))

    def t_there(self):
        if self.chance(0.5):
            group = self.pick(("thing", "animal", "food", "person", "vehicle", "plant"))
            noun = self.noun(group)
            adj = self.adjective(group) + " " if self.chance(0.5) else ""
            phrase = adj + noun
            be = self.pick(("is", "was"))
            return f"there {be} {_article(phrase)} {phrase} {self.place_phrase()}", "."
        group = self.pick(("thing", "animal", "food", "person", "vehicle", "plant", "building"))
        n = self.small_number()
        noun = _plural(self.noun(group))
        be = self.pick(("are", "were"))
        tail = self.place_phrase() if group != "building" else "in this " + self.pick(
            ("town", "city", "village", "street"))
        return f"there {be} {number_to_words(n)} {noun} {tail}", "."

    def money(self) -> str:
        unit, sub = self.pick(_CURRENCIES)
        whole = self.small_number() if self.chance(0.8) else self.r.randint(1000, 9999)
        text = number_to_words(whole) + " " + (unit if whole == 1 else unit + "s")
        if self.chance(0.5):
            cents = self.r.randint(1, 99)
            if sub == "penny":
                subword = "penny" if cents == 1 else "pence"
            else:
                subword = sub if cents == 1 else sub + "s"
            text += " and " + number_to_words(cents) + " " + subword
        return text

    def t_numbers(self):
        roll = self.r.random()
        if roll < 0.25:
            group = self.pick(("food", "thing", "clothes", "vehicle", "text", "instrument"))
            np_, _ = self.noun_phrase(group, allow_plural=False, definite_bias=1.0,
                                      adjective_p=0.4)
            verb = self.pick(("costs", "cost", "is", "was"))
            return f"{np_} {verb} {self.money()}", "."
        if roll < 0.45:
            subj, third, _ = self.subject(animals=False)
            verb = self.pick(self.lex.transitive_verbs)
            nouns = [n for g in self.lex.transitive[verb] for n in self.lex.nouns[g]
                     if self.lex.home[n] not in self.lex.mass]
            if not nouns:
                verb, nouns = "buy", self.lex.nouns["thing"]
            n = self.small_number()
            return (f"{subj} {self.verb_group(verb, subj, third)} {number_to_words(n)} "
                    f"{_plural(self.pick(nouns))} " + " ".join(self.extras(0.3, 0.4, 0))), "."
        if roll < 0.6:
            unit = self.pick(_UNITS)
            n = self.small_number()
            noun = number_to_words(n) + " " + _plural(unit)
            pattern = self.pick((
                "{s} waited for {n}", "the {p} is {n} away", "we walked {n} {t}",
                "it took {n} to get there", "the trip lasted {n}", "{s} ran {n} {t}",
                "the {p} is about {n} from here", "{s} stayed for {n}"))
            subj, _, _ = self.subject(animals=False)
            return pattern.format(s=subj, n=noun, p=self.noun("building"),
                                  t=self.time_phrase()).strip(), "."
        if roll < 0.72:
            n = self.r.randint(-20, 45)
            temp = ("minus " + number_to_words(-n)) if n < 0 else number_to_words(n)
            unit = "degree" if abs(n) == 1 else "degrees"
            return self.pick((f"it is {temp} {unit} outside",
                              f"the temperature was {temp} {unit} {self.time_phrase()}",
                              f"it will be {temp} {unit} {self.time_phrase()}")), "."
        if roll < 0.84:
            subj, third, _ = self.subject(animals=False)
            age = self.r.randint(2, 99)
            be = self.be(subj, third, "present")
            return self.pick((f"{subj} {be} {number_to_words(age)} years old",
                              f"{subj} will be {number_to_words(age)} {self.time_phrase()}",
                              (f"my {self.noun('person')} turned {number_to_words(age)} "
                               f"{self.time_phrase()}"))), "."
        n = self.r.randint(2, 100)
        return self.pick((
            f"about {number_to_words(n)} percent of the {_plural(self.noun('person'))} agreed",
            (f"{number_to_words(n)} {_plural(self.noun('person'))} came to the "
             f"{self.noun('event')}"),
            (f"the score was {number_to_words(self.r.randint(0, 9))} to "
             f"{number_to_words(self.r.randint(0, 9))}"),
            (f"page {number_to_words(self.r.randint(1, 400))} is missing from the "
             f"{self.noun('text')}"))), "."

    def clock(self) -> str:
        hour = self.r.randint(0, 23)
        minute = self.pick((0, 0, 5, 10, 15, 20, 25, 30, 30, 35, 40, 45, 50, 55,
                            self.r.randint(1, 59)))
        text = time_words(hour, minute, style=self.r.randint(0, 1))
        if text not in ("noon", "midnight") and self.chance(0.35):
            text += " " + ("in the morning" if hour < 12 else
                           "in the afternoon" if hour < 18 else "in the evening")
        return text

    def t_time(self):
        clock = self.clock()
        roll = self.r.random()
        if roll < 0.3:
            vehicle = self.noun("vehicle")
            verb = self.pick(("leaves", "arrives", "departs", "left", "arrived", "will leave"))
            return f"the {vehicle} {verb} at {clock}", "."
        if roll < 0.5:
            event = self.noun("event")
            verb = self.pick(("starts", "begins", "ends", "started", "will start", "finished"))
            return f"the {event} {verb} at {clock}" + (
                " on " + self.pick(_WEEKDAYS) if self.chance(0.4) else ""), "."
        if roll < 0.7:
            return self.pick((f"meet me at {clock}", f"please call me at {clock}",
                              f"we should leave at {clock}",
                              f"let's meet {self.place_phrase()} at {clock}")), "."
        if roll < 0.85:
            subj, _, _ = self.subject(animals=False)
            verb = self.pick(("woke up", "went to bed", "came home", "left the house",
                              "had breakfast", "finished work", "got to the station"))
            return f"{subj} {verb} at {clock}", "."
        return self.pick((f"it is {clock}", f"it is almost {clock}",
                          f"what happened at {clock}")), "."

    def date(self) -> str:
        month = self.pick(_MONTHS)
        day = ordinal_words(self.r.randint(1, 28 if month == "February" else 30))
        if self.chance(0.5):
            text = f"the {day} of {month}"
        else:
            text = f"{month} {day}"
        if self.chance(0.4):
            text += " " + year_words(self.r.randint(1900, 2030))
        return text

    def t_date(self):
        roll = self.r.random()
        subj, third, _ = self.subject(animals=False)
        if roll < 0.25:
            be = self.be(subj, third, "past")
            return f"{subj} {be} born on {self.date()}", "."
        if roll < 0.45:
            event = self.noun("event")
            return f"the {event} {self.pick(('is', 'was', 'will be'))} on {self.date()}", "."
        if roll < 0.6:
            place = self.pick(("town", "city", "village", "country", "house", "farm"))
            return (f"{subj} moved to {_article(place)} {place} in "
                    f"{year_words(self.r.randint(1900, 2030))}"), "."
        if roll < 0.75:
            building = self.noun("building")
            return (f"the {building} {self.pick(('opened', 'closed', 'was built'))} in "
                    f"{year_words(self.r.randint(1800, 2030))}"), "."
        if roll < 0.88:
            return (f"today is {self.pick(_WEEKDAYS)} the "
                    f"{ordinal_words(self.r.randint(1, 31))} of {self.pick(_MONTHS)}"), "."
        return f"the deadline is {self.pick(_WEEKDAYS)} {self.date()}", "."

    def digits(self, low=3, high=10) -> str:
        n = self.r.randint(low, high)
        words = []
        for _ in range(n):
            d = self.r.randrange(10)
            words.append("oh" if d == 0 and self.chance(0.3) else DIGIT_WORDS[d])
        return " ".join(words)

    def t_digits(self):
        what = self.pick(("phone number", "room number", "code", "pin", "account number",
                          "ticket number", "order number", "seat number", "locker number",
                          "flight number", "reference number", "extension"))
        digits = self.digits(2 if what in ("room number", "seat number", "extension") else 3)
        owner = self.pick(("my", "your", "his", "her", "our", "their", "the"))
        return self.pick((f"{owner} {what} is {digits}",
                          f"please write down {owner} {what}, {digits}",
                          f"the {what} you need is {digits}",
                          f"{digits}, that's {owner} {what}",
                          f"dial {digits} and wait",
                          f"enter {digits} to open the {self.pick(('door', 'gate', 'locker'))}")
                         ), "."

    def t_compound(self):
        roll = self.r.random()
        first = self.pick((self.transitive_clause, self.intransitive_clause,
                           self.copula_clause))
        second = self.pick((self.transitive_clause, self.intransitive_clause,
                            self.copula_clause))
        a = first() if first == self.copula_clause else first(extras=self.chance(0.4))
        b = second() if second == self.copula_clause else second(extras=self.chance(0.4))
        if roll < 0.2:
            return f"{a}, and {b}", "."
        if roll < 0.35:
            return f"{a}, but {b}", "."
        if roll < 0.5:
            return f"{a} because {b}", "."
        if roll < 0.62:
            return f"when {a}, {b}", "."
        if roll < 0.72:
            return f"{a} while {b}", "."
        if roll < 0.82:
            subj, _, _ = self.subject(animals=False)
            verb = self.pick(("said", "thinks", "knew", "told me", "believes", "heard",
                              "noticed", "forgot", "remembered", "hopes"))
            return f"{subj} {verb} that {a}", "."
        if roll < 0.9:
            return f"I think {a}", "."
        return f"{a}, so {b}", "."

    def t_relative(self):
        verb = self.pick(self.lex.transitive_verbs)
        group = self.pick(self.lex.transitive[verb])
        noun = self.noun(group)
        subj, _, _ = self.subject(animals=False)
        tense_verb = _past(verb)
        adj = self.adjective(self.lex.home[noun])
        be = "was"
        if self.chance(0.5):
            return f"the {noun} that {subj} {tense_verb} {be} {adj}", "."
        person, _ = self.noun_phrase("person", allow_plural=False, definite_bias=1.0,
                                     adjective_p=0.0)
        verb = _past(self.pick(self.lex.intransitive["P"]))
        return f"{person} who {verb} {self.place_phrase()} is my {self.noun('person')}", "."

    def t_comparison(self):
        group = self.pick(("thing", "building", "animal", "vehicle", "food", "outdoor"))
        a, b = self.noun(group), self.noun(group)
        adj = self.adjective(group)
        return self.pick((f"the {a} is as {adj} as the {b}",
                          f"the {a} is more {adj} than the {b}",
                          f"the {a} was not as {adj} as the {b}",
                          f"this {a} is the most {adj} one {self.place_phrase()}")), "."

    def t_possession(self):
        subj, third, _ = self.subject(animals=False)
        group = self.pick(("animal", "thing", "vehicle", "clothes", "instrument", "plant"))
        noun = self.noun(group)
        adj = self.adjective(group)
        roll = self.r.random()
        if roll < 0.5:
            has = "has" if third else "have"
            has = self.pick((has, "had"))
            return f"{subj} {has} {_article(adj)} {adj} {noun}", "."
        if roll < 0.8:
            neg = "doesn't" if third else "don't"
            return f"{subj} {neg} have any {_plural(noun)}", "."
        return (f"{subj} used to have {number_to_words(self.small_number())} "
                f"{_plural(noun)}"), "."

    def t_weather(self):
        roll = self.r.random()
        adj = self.pick(self.lex.adjectives["weather"])
        when = self.time_phrase()
        if roll < 0.35:
            be = self.pick(("it is", "it was", "it will be", "it might be", "it wasn't"))
            return f"{be} {self.pick(('', 'very ', 'quite ', 'too '))}{adj} {when}", "."
        if roll < 0.6:
            weather = self.noun("weather_mass")
            verb = self.pick(("stopped", "started", "came back", "got worse", "was heavy",
                              "was light", "kept us inside", "will stop soon",
                              "woke me up", "ruined the picnic"))
            return f"the {weather} {verb}" + (f" {when}" if self.chance(0.5) else ""), "."
        if roll < 0.8:
            verb = self.pick(("rained", "snowed", "was raining", "was snowing",
                              "is raining", "is snowing", "will rain", "will snow"))
            return f"it {verb} {when}", "."
        return (f"the weather {self.pick(('is', 'was', 'will be'))} {adj} "
                f"{self.place_phrase()}"), "."

    TEMPLATES = (
        ("t_statement", 22), ("t_intransitive", 9), ("t_copula", 6), ("t_yes_no", 6),
        ("t_wh_question", 6), ("t_imperative", 7), ("t_short", 4), ("t_there", 4),
        ("t_numbers", 7), ("t_time", 5), ("t_date", 5), ("t_digits", 4), ("t_compound", 10),
        ("t_relative", 2), ("t_comparison", 2), ("t_possession", 3), ("t_weather", 3),
    )

    def sentence(self) -> str:
        names = [n for n, _ in self.TEMPLATES]
        weights = [w for _, w in self.TEMPLATES]
        name = self.r.choices(names, weights)[0]
        text, mark = getattr(self, name)()
        text = " ".join(text.split())
        text = " ".join("I" if w == "i" else
                        ("I" + w[1:] if w.startswith("i'") else w) for w in text.split(" "))
        return text[0].upper() + text[1:] + mark


def iter_sentences(seed: int):
    """An endless stream of unique sentences for ``seed`` (unique after normalization)."""
    grammar = _Grammar(random.Random(f"speech_rnn.sentences:{seed}"))
    seen = set()
    while True:
        sentence = grammar.sentence()
        key = normalize_text(sentence)
        if key in seen or not MIN_WORDS <= len(key.split()) <= MAX_WORDS:
            continue
        seen.add(key)
        yield sentence


def generate_sentences(n: int, seed: int) -> list:
    """``n`` unique English sentences, deterministic for ``seed``.

    The result for a larger ``n`` starts with the result for a smaller one.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    return list(islice(iter_sentences(seed), n))


@lru_cache(maxsize=1)
def vocabulary() -> frozenset:
    """Every word (normalized) that the generator can produce."""
    lex = _lexicon()
    words = set()
    for group, nouns in lex.nouns.items():
        for noun in nouns:
            words.add(noun)
            if group not in lex.mass:
                words.add(_plural(noun))
    for unit in _UNITS:
        words.update((unit, _plural(unit)))
    for unit, sub in _CURRENCIES:
        words.update((unit, unit + "s", sub, sub + "s"))
    words.update(("pence", "penny"))
    verbs = set(lex.transitive) | set(lex.intransitive["P"]) | set(lex.intransitive["A"])
    for sounds in lex.sounds.values():
        verbs.update(sounds)
    for verb in verbs:
        words.update((verb, _past(verb), _participle(verb), _third(verb), _gerund(verb)))
    for adjs in lex.adjectives.values():
        words.update(adjs)
    words.update(_ADVERBS_MANNER, _ADVERBS_FREQ, _WEATHER_NOUN_ADJECTIVES)
    for phrase in lex.time_phrases:
        words.update(phrase.split())
    for preps in (_PREPOSITIONS_PLACE, _PREPOSITIONS_OUTDOOR, _PREPOSITIONS_THING):
        for p in preps:
            words.update(p.split())
    words.update(m.lower() for m in _MONTHS)
    words.update(d.lower() for d in _WEEKDAYS)
    words.update(DIGIT_WORDS)
    words.add("oh")
    for n in range(1, 100):
        words.update(ordinal_words(n).split())
    for n in range(1000):
        words.update(number_to_words(n).split())
    words.update(("thousand", "hundred", "minus"))
    words.update(w.lower() for w in _TEMPLATE_WORDS.split())
    words.update(_MODALS)
    for subj, obj, poss, _ in _PRONOUNS.values():
        words.update((subj.lower(), obj, poss))
    return frozenset(normalize_text(w) for w in words if normalize_text(w))
