#!/usr/bin/env python3
"""Generate the synthetic support-ticket demo dataset in datasets/tickets/.

The tickets belong to an invented company, Tidewell Mobile & Broadband (a
telecom/ISP with an app and an online shop). Each ticket is built around one
hand-written "core" phrasing of its main issue, optionally wrapped in shared
openers, context lines, category-specific details, a secondary issue borrowed
from another (often confusable) category, closers and signatures, then
roughened with typos and casual-writing noise. Random values (order numbers,
amounts, dates, ...) fill the {slots}. One random.Random(2026) drives every
choice, so the output is byte-for-byte reproducible. Splits are 60/20/20,
stratified by category, with one core phrasing per category held out for test
and one for validation (see HELDOUT_TICKETS).

Usage, from the repository root (writing needs only the standard library):

    python bench/make_demo_tickets.py            # (re)write the dataset files
    python bench/make_demo_tickets.py --check    # validate + TF-IDF baseline

--check needs scikit-learn. It validates the files on disk (format, duplicates,
counts, preference prompts taken from train only), confirms they equal what
this script generates, and prints the accuracy of a TF-IDF + logistic
regression baseline trained on train and scored on validation and test.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SEED = 2026
SYSTEM_PROMPT = "Route the customer support ticket to exactly one category."
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "datasets" / "tickets"
TICKETS_PER_CATEGORY = (40, 45)  # inclusive range, drawn per category
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # train / validation / test
# Per category, one core phrasing is reserved for test and one for validation
# (HELDOUT_TICKETS tickets each). Without this every test ticket would reuse a
# phrasing seen in train, and the benchmark would reward template memorisation
# instead of understanding what the customer wants.
HELDOUT_TICKETS = 3
PREFERENCES_PER_CATEGORY = 6
# Categories whose tickets are friendly or neutral: no angry closers, and (for
# compliments) no secondary complaints or "second time writing" context.
CALM = {"feedback_compliment", "accessibility_support", "coverage_question", "business_account", "upgrade_plan"}

# --------------------------------------------------------------------------
# Category fragments, one per line:
#   ## name -> neighbour ...   starts a category; neighbours are its most
#                              confusable categories (asides, preference pairs)
#   : text                     one-line description (categories.json, README)
#   plain line                 a core phrasing of the main issue
#   - text | text ...          more cores: short, terse ones
#   + text | text ...          detail sentences that may follow the core
#   > text | text ...          asides: this issue mentioned in passing in
#                              another category's ticket (lower-case start)
# Many cores deliberately avoid their category's obvious keyword, and the
# confusable groups share vocabulary (bill, charge, SIM, router, ...), so a
# bag-of-words model cannot simply key on one word per category.
# --------------------------------------------------------------------------
FRAGMENTS = """
## refund_request -> billing_dispute double_charge
: Asks for money back: a cancelled order, an unused service, an overpayment or a credit owed.
I cancelled order {order} on {date} before it shipped and I still haven't had the {amount} back.
Can I get a refund for the {amount} add-on? I bought it by mistake and never used a single MB of it.
My account is showing a credit balance of {amount} since I left. How do I get that paid into my bank?
You told me on the phone the {amount} would be returned to my card within 5 working days. It's been {days} days.
I want my money back. The broadband was down for {days} days and I'm paying for a service I didn't get.
please refund the {month} bill, I had already moved out and the line was closed
Returned the {device} within the cooling-off period (order {order}), courier confirmed you received it. So where is my money?
I overpaid by mistake, paid {amount} on top of the direct debit. Could the extra be sent back to me rather than left on the account?
refund status?? order {order}
My father passed away in {month} and the account kept taking payments after we told you. We would like those payments returned, please.
I was promised a goodwill credit of {amount} for the outage. Could that go back to my card instead of sitting on the bill?
Bought a {amount} travel bolt-on for a trip that got cancelled. It was never used, can it be reversed?
How long do refunds take to show up? I got an email saying it was processed on {date} but nothing in my account yet.
I paid {amount} extra for next-day delivery and it came four days later. I'd like the delivery charge back.
When will I see the {amount} you owe me? The adviser said it was approved.
Closed my account in {month}, final bill was in credit. Nobody has paid it out.
- still no refund for {order} | want my money back | where is my refund
+ The payment reference on my statement is {ref}. | I'd prefer it back on the original card ending {last4}.
+ I have the cancellation confirmation email if you need it.
+ That money was meant for rent so I really need it back this week.
+ Nobody has been able to tell me where the money actually is. | A cheque is fine if that's easier.
> I'm still waiting on money back from last month
> I'd also like the {amount} for the unused month returned at some point

## billing_dispute -> refund_request double_charge late_payment_fee
: Disagrees with an amount or line item on a bill: wrong price, unexpected charge, something never ordered.
My bill this month is {amount} more than my plan price. Nobody told me about any increase.
There's a charge on my latest invoice called 'Premium Services' for {amount}. I have never signed up to anything like that.
Why am I paying for a landline? I only have broadband with you.
I was quoted {price} a month when I signed up in the shop and every bill since has been higher.
The bill shows {n} calls to an 0870 number that I did not make. Please take them off.
charged for phone insurance i cancelled in {month}. thats {amount} i shouldnt have paid
Can someone explain the 'adjustment' line on my statement? It added {amount} and I can't see what for.
I think you've got me on the wrong tariff. I downgraded to {plan} on {date} but I'm still being charged the old price.
My discount has vanished without warning. The contract says it runs for 24 months.
bill is wrong AGAIN. {amount} for 'out of bundle usage' when i have unlimited everything
You've charged me for a full month on a line I only had for 9 days.
I do not agree with this bill and I'm not paying it until someone goes through it with me line by line.
Got charged a {amount} 'activation fee' for a SIM-only deal that was advertised as no upfront cost.
Where has {amount} for 'equipment' come from? I've had the same router for four years.
The amount you're asking for doesn't add up. Plan plus the bolt-on should be {amount2}, not {amount}.
- this bill is wrong | what is this {amount} charge | bill doubled for no reason
+ I've attached a screenshot of the bill with the line circled. | Account number is {acct}.
+ This is the third month I've had to query something.
+ My usage hasn't changed at all, so I don't see how the total went up. | I have the original quote in writing.
+ Please don't just tell me it's correct without checking.
> my bill also looks higher than usual this month, no idea why
> there's a line on the last invoice I don't recognise either

## double_charge -> billing_dispute refund_request
: The same payment was taken twice (or more) for one bill, order or top-up.
Two identical payments of {amount} left my account on {date}. I only have one account with you.
I've been charged twice for order {order}. My banking app shows two pending transactions from Tidewell.
Why has my direct debit gone out twice this month?
topped up {amount} once, money taken 2x
The checkout page froze when I paid so I pressed the button again. Now I've paid for the same {device} two times but only have one order number.
My card statement shows {amount} on the 1st and the exact same amount again on the 3rd, both labelled TIDEWELL BB.
You took the monthly payment by direct debit AND from my card on file. I'm now overdrawn because of this.
Hello, my partner and I both paid the same bill not knowing the other had. Can one of the payments be put back?
I see the {month} payment three times in my bank. Three! Please fix this today.
Same payment taken twice, ref {ref}. I need one of them reversed.
When I paid the bill in the app it said failed, so I paid again on the website. Turns out both went through.
Hi, I think your system took money again for a month I'd already paid. {amount} went out on {date} and again on {date2}.
My bank balance is {amount} lower than it should be because you billed me for one phone line and then billed me again for it.
Paid once, you've debited me for it on two separate days.
- charged twice this month | payment taken two times??
+ Both transactions have the same reference. | I've got screenshots from my banking app showing both.
+ My bank says they can't do anything until you confirm it. | This left me short for the rest of the week.
+ The first one was on the card ending {last4}.
> I also think a payment may have gone out twice, I'll check my bank
> my bank shows two payments to you, not sure if that's right

## cancel_subscription -> contract_terms moving_address
: Wants to end a plan, contract, line or add-on.
I'd like to cancel my broadband. I'm moving in with my partner who already has internet.
Please close my account at the end of the current billing period.
How do I get rid of the sports add-on? I can't find a button for it anywhere.
cancel my contract. ive had enough
I no longer need the second line on my account ({phone}), it was for my son who has his own contract now. Please stop it.
I'm writing to give notice that I want to leave Tidewell. My contract ended on {date} so there should be no fee.
Can you stop the {plan} plan from renewing? I only wanted it for the summer.
We are emigrating next month and won't need the home phone or broadband after {future}.
Please terminate the mobile line ending {last4}. Its owner passed away and I'm dealing with his accounts.
Not renewing. Just tell me what I have to do to end it and what I need to send back.
I want to stop paying for the TV package, we never watch it. Keep the broadband.
I signed up for a free trial of the streaming bundle and I don't want it to turn into a paid subscription.
Found a better deal elsewhere so this is my 30 days notice.
Please switch off everything on account {acct} from the end of the month. I won't be needing it.
- cancel everything please | close my account asap
+ Please confirm in writing once it's done. | I don't want a retention call, I've made up my mind.
+ The account is in my name, date of birth {dob}. | Let me know if there's a final bill.
+ Don't try to sell me another deal please.
> I'm honestly thinking about leaving altogether | I'll probably drop the TV bit at some point too

## upgrade_plan -> data_allowance contract_terms
: Wants a bigger, faster or better plan, or a new handset on an upgrade.
Am I due an upgrade yet? I've had this {device} for nearly two years.
What would it cost to go from {plan} to the fastest fibre you do at my address?
We've got three teenagers now and the internet can't keep up with them all. What's the next package up?
I'd like to move to the unlimited plan from next month.
can i get the new {device} on my current contract or do i have to wait
I keep running out of data by the 20th every month. Is there a bigger plan that isn't crazy expensive?
Saw the advert for Fibre 900. How do I switch to it and does it need a new router?
Looking to add the TV box and a faster connection to my existing package. What deals are there for current customers?
Hi, I want to go up a tier. Currently paying {price}, happy to pay a bit more for more speed.
Does getting a new handset early mean I have to pay off the rest of my phone? I'd like the {device} when it comes out.
My contract is up in {month}, what can you offer me to stay and move to something better?
Please switch my SIM-only to the 100GB one, the 30GB isn't enough anymore.
What's the best you can do on a new phone for an existing customer?
Thinking of adding 5G and more minutes to my line. What are the options?
- what upgrade options have I got | want faster broadband | am i eligible for an upgrade
+ I'm happy to sign a new 24 month contract if the price is right.
+ I work from home now so I need something more reliable. | I'd rather do it online than go into a shop.
+ Is there a loyalty discount for people who have been with you a long time? | My budget is about {price} a month.
> I might also want to upgrade my package soon | what would a faster plan cost?

## sim_activation -> esim_transfer porting_number
: A new physical SIM card has arrived but isn't working or needs activating.
My new SIM came today but the phone just says 'No SIM'.
How do I activate the SIM card you sent? The leaflet says go online but the page says my number isn't recognised.
Got my replacement sim, put it in, still showing emergency calls only. Been {hours} hours.
I received a card for my new line but can't make any calls with it. Is it live yet?
the sim that came with order {order} isn't doing anything. do i need to ring someone?
I ordered a SIM-only plan. The card arrived on {date}, it's in the phone, but there are no signal bars and no network name.
The activation code on the back of the card doesn't work when I type it into your website.
New customer here. When does the little card actually start working? It's been in my phone since yesterday.
I cut my new SIM down to fit and now my phone says invalid SIM. Did I break it or is it just not switched on yet?
Phone says 'SIM not provisioned MM#2'. What does that mean?
My daughter's SIM from the family plan still isn't live after 2 days.
Put the card from your welcome pack in my {device} and it won't register on the network.
Replacement for my damaged SIM arrived. Do I have to do anything to get it going or should it just work?
- new sim not working | sim still not active
+ The number printed on the card ends {last4}. | I've restarted the phone three times.
+ The phone is unlocked, I checked. | I need it working for work on Monday.
> the new SIM also hasn't started working yet | my replacement SIM isn't working either

## porting_number -> sim_activation esim_transfer
: Moving a phone number to or from Tidewell: transfer codes, port dates and failed ports.
I want to bring my old number over from my previous provider. What do I need from them?
Can you send me my PAC code please, I'm switching network.
My number was supposed to move across on {date}. The Tidewell SIM works but people calling my old number still reach the old network.
The transfer failed and now I'm stuck with a temporary number I don't want. I need my real one back.
texted PAC to get my code, keeps saying not available
I'm leaving for another provider and want to keep my mobile number {phone}. How long is the code valid for?
Joined last week, my {device} has a random new number. How do I swap it for the one I've had for 15 years?
Request to switch {phone} over has been 'in progress' for {days} days.
My business relies on this number. Please confirm the switch will not lose it.
Can I keep my landline number if I move my broadband to Tidewell?
The code the other network gave me was rejected on your website, it says the code and number don't match.
i gave your shop my transfer code and nothing has happened, still on the old network
Everyone knows me by my old number. Can you bring it across from my last network, please?
- need my PAC | number transfer stuck
+ My old provider says they've released it. | The code I was given is {pac}.
+ I can't afford to miss calls from clients during the switch. | Date of birth on the account is {dob}.
> I'll also need to move my old number across at some point | I want to keep my current number when I switch

## roaming_charges -> international_calls data_allowance
: Charges, usage or service problems while abroad.
I've just come back from {country} and have a {amount} bill. I thought that was included.
My phone isn't working in {country}. No data, can't call. Roaming is switched on.
Do I need to buy anything before I go to {country} or does my plan cover it?
I got a text saying I'd used {amount} of data abroad. I had data turned off!
On a cruise ship and the phone connected to some 'maritime network', now I've got charges of {amount}. Nobody warned me.
What's the daily cost for using my phone in {country}?
Charged for being abroad while I was in Northern Ireland near the border. My phone picked up an Irish mast.
hi, on holiday right now, data stopped working after 2 days, is there a cap?
I was in {country} for a week and there are calls on my bill I don't remember, at {amount} each.
Please can you put a spending cap on my daughter's phone before her school trip to {country}.
The travel pass I bought didn't seem to apply and I was charged pay-as-you-go rates the whole time.
Why was I charged for receiving calls while I was away? I didn't even answer most of them.
Landed in {country} this morning and the phone says 'no service' even though it's meant to be included.
- huge bill after my holiday | no data abroad
+ Dates are {future} to {future2}. | I have the text messages you sent me when I landed.
+ My friends on other networks paid nothing. | Email is the best way to reach me while I'm away.
> I'm also off to {country} next month so need to know about using my phone there
> there was a weird charge from when I was abroad in {month}

## slow_internet -> no_connection tv_streaming
: Broadband or mobile data works but is slow, laggy or loses speed.
Paying for {paid}Mb and getting about {speed}. Speed tests attached.
Internet crawls every evening from about 7 till 11. Mornings are fine.
Video calls keep freezing and pixelating, but the connection never actually drops.
why is my broadband so slow?? takes a minute to load a webpage
Netflix keeps dropping to low quality and games lag constantly. Is there a problem in my area?
Since the engineer visit on {date} my speeds have halved.
Upload is basically nothing. I can't send files for work, it takes 20 minutes for a 50MB attachment.
4G data is really sluggish at home, pages just spin, even though I have full bars.
The Wi-Fi is fine in the same room as the hub but useless upstairs. A test next to the router says {speed}Mbps, way below what I pay for.
Downloads used to run at 60 and now barely reach {speed}. Nothing has changed at my end.
Everything works, just painfully. I've rebooted the router more times than I can count.
Ping is over 200ms all day. Gaming is unplayable.
A 2GB game update took all night. Is my line throttled?
Pages half load, then sit there. It's like being back on dial-up.
- internet so slow today | speeds terrible again
+ I've tried with a cable plugged directly into the router, same result.
+ My neighbour is on the same street and has no problems. | The line checker said I should get at least {paid}.
+ I work from home so this is costing me. | It's been like this for about {days} days.
> the internet has been slow as well lately | speeds have been poor in the evenings too

## no_connection -> slow_internet router_setup
: No internet or no mobile signal at all: the service is down.
Internet has been completely down since {time} yesterday. Router light is flashing red.
No broadband at all. Can't connect any device.
Hi, we have no service on our street, all the neighbours on Tidewell are affected too. Any idea when it'll be back?
Phone has had zero signal since this morning, just says No Service. Other people's phones work.
nothing works. no wifi, no tv, nothing. {days} days now
Our connection dropped out on {date} and hasn't come back. I've restarted the router and checked every cable.
The light on the hub is off and nothing will load. We're offline completely.
Is there an outage in {city}? I can't get online.
I'm working from home and have been offline since lunchtime. This is urgent.
Router says 'connected' but literally nothing loads, every site times out.
Lost all signal on my mobile after the storm, and the home phone line is dead too.
Our wifi just vanished last night. Nothing has worked since, I've tried everything.
Totally cut off since the roadworks outside started.
- internet down again | no signal at all
+ I've been tethering off my phone in the meantime which is eating my data.
+ The service status page says there are no problems, which is clearly wrong.
+ My mum relies on the line for her alarm so this is serious. | The light has been orange ever since.
> the connection also went down completely for a few hours on {date} | we had no signal at all on Sunday

## router_setup -> no_connection parental_controls
: Installing or configuring a router or Wi-Fi: network name, password, settings, extenders.
How do I change the Wi-Fi name and password on the {router}?
New router arrived, which cable goes where? The instructions only show a different model.
I want to use my own router instead of yours. What settings do I need?
Can't log into the admin page. What's the default password?
need to open ports for a game server, where do i do that on the hub
We bought one of your boosters but can't get it to pair with the hub. The light just keeps blinking white.
What's the 192.168 address for the {router}? Trying to give my printer a fixed IP.
How do I split the 2.4 and 5GHz bands? My smart plugs won't connect to the combined one.
Moved the router to a different room and now the printer and TV can't find the network.
My new smart doorbell won't join the Wi-Fi. Is there a setting I need to change?
I've set up the hub following the guide but my laptop keeps asking for a network key I never created.
Is it possible to turn off the wireless on your box and use it as a modem with my mesh system?
What do all the lights on the front mean? Just plugged it in for the first time.
- how to change wifi password | help setting up router
+ The sticker on the back has worn off. | I'm not very technical so step-by-step would be great.
+ The model on the bottom says {router}. | I've tried the reset pin already.
> how do I change the wifi password? | I'd like to set up a separate guest network at some point

## password_reset -> account_locked app_bug
: Forgot a password, or the reset link or code isn't arriving or working.
I forgot my password for My Tidewell. The reset email never arrives.
Reset link says 'expired' every time I click it, even straight away.
how do i change my password
I've requested a code four times to get back into my account and no text has come through.
The reset page says my email address isn't registered, but I get your bills at that address.
My old email account doesn't exist anymore so I can't receive the link. How else can I get into my account?
I changed my password yesterday and now the new one isn't accepted either.
Can someone send me a temporary password? I just want to see my bill.
The 'forgot password' button doesn't do anything in Safari.
I set a new password but it says it doesn't meet the requirements, with no explanation of what they are.
Hi, I've lost the login details for the account. The person who set it up (my ex) has left and I'm the bill payer now.
i can't remember what email or password i used to register, please help
No idea what my login is anymore, haven't used the website in years.
- forgot my password | reset email not coming
+ I've checked the spam folder. | The email on the account is {email}. | I'm the account holder, date of birth {dob}.
+ I just need to pay my bill.
> I also can't remember my password for the website | the password reset email never came through last time either

## account_locked -> password_reset privacy_data_request
: Online account locked, suspended or blocked after failed logins or a security hold.
My account has been locked after too many attempts. How long do I have to wait?
It says my account is suspended for security reasons. I haven't done anything!
Locked out of My Tidewell. Error says 'account temporarily disabled, contact us'.
I typed my password wrong a couple of times and now I can't even request a reset, it just says locked.
Why has my online account been frozen? I got an email about 'unusual activity'.
account blocked again, 2nd time this week
You put a fraud block on my account and now I can't do anything, not even pay. Please lift it, I can verify who I am.
The app logged me out and now when I log in it says the account is on hold.
I can't get into my account because it says it's locked, and your phone line keeps telling me to go online.
Someone tried to get into my account, I got an alert, and now I'm the one shut out.
Every time I enter the security code it says 'too many attempts, try again in 24 hours'.
Can you unlock my online account please? Same email as this one.
Right password, right email, and it still says access denied pending verification.
- my account is locked | locked out again
+ The message references code {errcode}. | I know the password is right, I use a password manager.
+ I have bills to pay and I'm stuck. | I can answer security questions if you call me on {phone}.
> my online account is also locked so I can't check myself | my account got locked last week too

## update_payment_method -> late_payment_fee double_charge
: Change the card, bank account, direct debit or payment date used to pay.
I've got a new bank card, how do I update it on my account?
Please change my direct debit to my new bank account. Sort code {sortcode}, I can give the account number over the phone.
My card expired last month and the app won't let me add the new one.
want to pay by direct debit instead of card from now on
Can I move the payments to my husband's card? He'll be paying the bill from now on.
The 'update payment details' form keeps rejecting my card even though it works everywhere else.
I'm switching banks next week, what do I need to do so the bill doesn't bounce?
Could you change the payment date to the 28th? That's when I get paid.
I'd like to remove my old card from the account completely, it was compromised.
Is it possible to pay with PayPal instead?
I've had a new card issued after fraud on the old one, card ending {last4} is no longer valid.
New account details for the DD please, old account is being closed on {future}.
From now on my company will pay this bill, can their card go on file?
- new card details for my account | change my bank details
+ I don't want to miss a payment because of this. | The next bill is due on {future}.
+ I'm happy to do it over the phone if that's easier.
> I need to change the card you take payment from | my card on file is about to expire

## invoice_copy -> business_account billing_dispute
: Needs a copy of a bill, invoice, receipt or statement.
Can I get a copy of my {month} bill? I need it for proof of address.
Please send a VAT receipt for order {order}.
Where can I download old invoices? The app only shows the last three months.
I need statements for the last 12 months for my tax return, I work from home and claim part of the broadband.
need invoice for the phone i bought, the repair place is asking for it
Could you post me a paper copy of my latest bill? I don't have a printer.
My mortgage lender wants a utility bill in my name dated within 3 months. Can you email one?
The PDF link in your email gives an error page.
I need a receipt showing the {amount} I paid in store on {date}.
Can you re-send the final bill from when I closed my account? I lost the email.
Hi, please email all invoices from January to now to {email}.
Looking for an itemised bill showing all calls in {month}, need it for an expenses claim.
Something with your logo, my name and address on it, for the council. Anything from the last quarter.
- copy of bill please | need a receipt for {order}
+ It needs to show my full name and address. | My account number is {acct}. | PDF is fine.
> could you email me a copy of last month's bill? | I'll need a receipt for the accountant too

## delivery_delay -> damaged_device refund_request
: An order from the shop hasn't arrived or its tracking has stalled.
Order {order} was due on {date} and still hasn't arrived.
Tracking has said 'out for delivery' for three days now. Where is my phone?
Where's my stuff? Ordered a week ago. No emails, no tracking.
The courier says it was delivered but nothing came to my house.
My router was supposed to arrive before the switch-on date, which is tomorrow. It hasn't even been dispatched.
still waiting on order {order} 😡
I paid for next day delivery on {date} and the tracking page hasn't updated since 'label created'.
Your website says my order is 'processing' and has done for {days} days. When will it be sent?
Hi, the SIM you promised to post out hasn't turned up. It's been over a week.
The courier tried to deliver while I was at work and now I can't rebook it because the reference doesn't work.
Can you give me an update on my {device}? It's a birthday present for {future2}.
My parcel seems to be stuck at the depot in {city}.
Nothing has come yet and the driver's 'photo proof' shows someone else's front door.
- where is my order | parcel not here yet
+ Tracking number {tracking}. | I've had to take a day off work twice waiting for it.
+ The delivery address is correct on the order.
> the accessory I ordered still hasn't shown up | the SIM you posted hasn't arrived yet

## damaged_device -> return_device warranty_claim
: A device arrived broken, damaged in transit or dead on arrival.
The phone I received yesterday has a cracked screen straight out of the box.
Box was crushed when it arrived and the router inside has a snapped antenna.
New {device} won't turn on at all. Charged it overnight, nothing.
The TV box arrived with a rattle inside and it won't boot.
screen arrived with dead pixels down the left side, brand new phone
Order {order} came today but the packaging was soaking wet and the hub won't power up.
The courier obviously dropped it. There's a dent in the corner of the phone and the camera glass is shattered.
I opened the box and the charging port is bent. Haven't even used it.
My new headphones from your shop only play out of one side, right from the first use.
Delivered today, phone has scratches all over the back like it's been used before.
The booster you sent doesn't work at all, no lights, tried every socket in the house. First time I've plugged it in.
This phone was DOA. What now?
Unboxed it ten minutes ago and the back glass is already cracked.
- phone arrived broken | cracked out the box
+ I have photos of the box and the device. | I signed for it without checking, the driver was in a rush.
+ I need a replacement sent, not my money back. | The seal on the box was already broken.
> the case that came with it was also cracked | the charger you sent is also broken

## return_device -> damaged_device warranty_claim
: Wants to send a device back: changed mind, wrong item, or returning kit at the end of a contract.
I want to return the phone I bought on {date}. It's too big for my hands.
How do I send back the old router now that I've left?
You sent me the wrong colour. I ordered black and got pink. Can I swap it?
Changed my mind about the tablet, it's still sealed. How do I get a returns label?
Do I need to hand back the TV box when I cancel, or can I keep it?
need a returns bag for the hub
I'm within the 14 days, I'd like to send this {device} back. It's not for me.
The returns label link in my email is broken. How else can I send it?
You sent two routers by mistake, where do I post the extra one?
Can I drop it off at a shop instead of posting it?
I've been charged a non-return fee for equipment I sent back on {date}. I have the Post Office receipt.
Ordered the wrong model by accident, need the {device} instead. What's the process?
I don't like the phone. Nothing wrong with it, just not for me. What happens now?
- how do i return this | need a returns label
+ It's still in the original packaging. | I don't have a printer for the label. | Order reference {order}.
> I also need to send back the old equipment | I want to send the tablet back too

## warranty_claim -> damaged_device return_device
: A device developed a fault after a period of normal use and needs repair or replacement under warranty.
My phone is 10 months old and the battery now dies by lunchtime. Is it covered?
The {device} I bought from you last year keeps restarting itself. Can it be repaired under warranty?
Router worked fine for a year then started dropping Wi-Fi every hour. Is it still under guarantee?
charging port on my phone stopped working, bought in {month} last year, never dropped it
The speaker on my handset has gone crackly. I've had it since {month}. What are my options?
Screen started flickering with green lines after an update, phone is 14 months old. Isn't there a 2 year guarantee under consumer law?
My TV box has started overheating and switching off after about 20 minutes. It was fine until last month.
Touchscreen stopped responding in one corner. No damage on the phone. How do I book a repair?
the earpiece went quiet on my {device}, people sound really far away. it's only 8 months old
Hi, I need to send my phone in to be fixed, the face unlock has stopped working out of nowhere.
How long does a repair take? Will I get a loan phone while it's away?
My tablet won't charge anymore, it was bought on your contract {months} months ago.
Camera won't focus since about a month ago. It's still well within the first year.
- phone faulty after 9 months | is this covered under warranty
+ There's no physical damage, it's always been in a case. | I still have the receipt.
+ I've done a factory reset and it's still happening. | I rely on it for work so I can't be without it for weeks.
> the phone's battery has also started acting up | the old phone has developed a fault too

## technician_appointment -> moving_address no_connection
: Booking, rescheduling or chasing an engineer or technician visit.
The engineer didn't turn up today. I waited in from {time} to {time2}.
Can I move my installation appointment to next week? Something's come up.
I need someone to come out, the phone socket has come off the wall.
What time will the technician come on {future}? The email just says 'all day'.
Please book a visit, the man on the phone said it was a fault outside the house.
need to reschedule the install on {future}
Second missed appointment. I took a day off work for nothing.
Is it possible to have a Saturday slot? I work weekdays.
The engineer came but said he couldn't do the job without a ladder and left. When is he coming back?
Can you confirm my appointment is still on? I haven't had any text.
Your technician said someone else would come to finish the cabling. That was two weeks ago.
I'd like to cancel the engineer visit on {future}, the problem has fixed itself.
Who is coming on {future} and roughly when? I need to arrange to be home.
- engineer no show | change my install date
+ Appointment reference {ref}. | Please call ahead, the doorbell doesn't work.
+ There's a dog in the house, just so you know.
> I still need an engineer booked as well | the engineer never showed up last time

## moving_address -> coverage_question technician_appointment
: Moving home: transferring service to a new address or updating the address on file.
I'm moving house on {future}, can I take my broadband with me?
Moving to {city} next month. What do I need to do about my contract?
How much notice do you need to set up the internet at a new address?
please update my address, I've moved. new address {address}
We're moving to a flat across town on {future}. Will my phone number and broadband come with me?
Is fibre available at my new place? Postcode {postcode}. I'd like to transfer my current package there.
I've moved and my bills are still going to the old flat.
Exchanged on the new house today! Completion is {future}. I'd love the internet to be working the day we get in.
Do I have to pay a fee to take my service to a new home?
The new tenants at my old place say my router is still there. I'd like the account switched to my new flat asap.
Relocating in three weeks. Can the engineer come on the day I get the keys?
Getting the keys to our new flat on {future}. Same package please, different address.
- moving house next month | new address for my account
+ The old address is {address}. | My contract has about {months} months left.
+ I'd rather keep the same phone number if possible.
> I'm moving house soon too, so that'll need sorting | we're moving in {month}

## data_allowance -> upgrade_plan roaming_charges
: Questions about mobile data usage, running out of data, caps and data add-ons.
How much data do I have left this month? The app just shows a spinning wheel.
I've used 20GB in a week and I don't know how. Nothing has changed on my phone.
Got a text saying I've used 80% of my allowance. It's only the 5th!
Can I buy an extra 5GB just for this month?
when does my data reset
Does hotspotting my laptop count towards my allowance?
My mobile internet stopped and I got a message saying I'd reached my limit. Can you turn it back on?
Can unused gigabytes roll over to next month?
Is there a way to get an alert when my son hits half his allowance?
Your app says I've used 12GB but my phone's own counter says 4GB. Which one is right?
Are WhatsApp calls counted in my data or free?
I'm on 'unlimited' but my speeds dropped to nothing after 100GB. So it's not really unlimited?
Where has all my data gone? I've barely used the phone.
- out of data already? | how much data have i got left
+ I'm on the {plan} plan. | My number is {phone}. | I don't want to be charged extra.
> I seem to be burning through my data really fast | my data ran out early last month

## lost_or_stolen_phone -> unlock_phone sim_activation
: Phone lost or stolen: blocking the SIM or handset, a replacement SIM, fraud worries.
My phone was stolen last night in {city}. Please block the SIM immediately.
I've lost my phone. How do I stop anyone using it?
Phone was pickpocketed, need a new sim with the same number asap
Someone snatched my phone on the bus. Can you blacklist the IMEI? Police reference {ref}.
Left my mobile in a taxi, think it's gone. Can you put a bar on the number until I sort a replacement?
My son's phone was taken from him at school. What do we do about the contract?
I lost my phone on holiday and there are calls on the account I didn't make.
What happens with my monthly payments now that the handset is gone? I still owe {amount} on it.
Mugged this evening, phone gone. Please stop the line before they run up a bill.
I can't find my phone anywhere. If it turns up can the block be removed?
My bag was stolen with my work phone in it, number {phone}.
Does my insurance cover a stolen phone and how do I claim?
Dropped my mobile somewhere between the station and work. It's not been handed in.
- phone stolen, block it | lost my phone
+ I've reported it to the police. | I'm using a friend's phone to send this. | Find My Phone shows it switched off.
> my old phone got stolen last month too so that number is blocked
> I lost my old phone a while ago and never blocked it

## contract_terms -> cancel_subscription upgrade_plan
: Questions about contract length, minimum term, early exit fees, price-rise clauses and other terms.
When does my minimum term end?
How much would it cost to leave early? I have about {months} months left.
Your letter says prices are going up in April. Can I leave without a penalty because of that?
Is my contract 18 or 24 months? I can't find the paperwork.
what happens when my deal ends, does the price go up automatically?
The salesperson said I could cancel any time but now I'm being told there's a fee. What does my agreement actually say?
Does the annual price rise apply to me if I signed up after {date}?
Can I transfer my contract to my brother? He's going to take over the phone.
I'd like a copy of the terms I agreed to when I signed up in {month}.
Is there a cooling-off period for things signed over the phone?
If I pay off my handset early, does the airtime part end too?
I'm out of contract now. Am I free to go whenever I like, and do I need to give notice?
What am I actually tied into? The summary email is vague.
- when does my contract end | whats the exit fee
+ I signed up in the {city} store. | Account number {acct}. | I just want a straight answer.
> I'd also like to know when my contract actually ends | what's the exit fee if I leave early?

## complaint_staff -> feedback_compliment technician_appointment
: Complaint about how an employee, agent, salesperson or engineer behaved.
The man in your {city} shop was incredibly rude to me and my mother today.
I was on the phone with one of your agents for 40 minutes and he hung up on me.
Your engineer left mud all over my carpet and swore when I asked him to take his shoes off.
The chat agent kept copy-pasting the same answer and then closed the chat while I was typing.
I want to make a formal complaint about the person I spoke to on {date}. She was condescending and told me to 'google it'.
staff in store laughed at me when i asked a question. disgraceful
The salesman pressured my elderly father into a contract he didn't need. I want this investigated.
I was promised a call back three times by the same advisor and it never happened. He clearly didn't care.
Your door-to-door rep wouldn't leave when I asked him to.
Person on the phone was shouting at me. I'm the customer!
The assistant in the shop refused to help because my English isn't perfect.
I'd like to speak to a manager about how I was treated in the shop on {date}.
Being sworn at by someone who works for you is not acceptable.
- your staff are so rude | worst advisor ever
+ I think the name was {staffname}. | I have the date and time written down. | I've never been treated like that by any company.
+ I'd like an apology.
> frankly the person I spoke to last time was rude | the chat agent was very rude earlier

## app_bug -> password_reset account_locked
: The Tidewell app crashes, freezes, shows wrong information or a feature in it doesn't work.
The app crashes as soon as I open it on my {device}.
Since the latest update the app shows a white screen and nothing else.
The usage page says I've used -3GB. That can't be right.
app keeps logging me out every 5 minutes
Can't pay my bill in the app, the 'Pay now' button is greyed out.
Notifications from the app are in a language I don't speak, my settings are English.
Your app won't open on Android 14. Reinstalled twice.
The app says there is an outage in my area, but there isn't, everything works.
The total on my phone doesn't match the PDF. The PDF is right, the app is showing last month's.
Face ID login option disappeared after the update.
stuck on the loading screen with the tidewell logo forever
When I try to add a bolt-on in the app it spins and then says 'something went wrong'.
Tapping 'My plan' just bounces me back to the home screen.
- app not working | app crashing again
+ App version {appver}. | I've cleared the cache and reinstalled. | The website works fine, it's just the app.
> the app has been playing up as well | the app keeps crashing

## email_setup -> password_reset app_bug
: Setting up or accessing a Tidewell email address in a mail program or on a device.
What are the IMAP and SMTP settings for my tidewell.net email?
Can't get my Tidewell email on my new iPhone. It keeps saying the password is wrong.
Outlook stopped sending from my tidewell address, receiving is fine.
how do i get my email on my tablet
I want to keep my @tidewell.net address after leaving. Is that possible?
Thunderbird keeps asking for my password every few minutes for the tidewell mailbox.
Set up a second email address for my wife on our account, how?
My messages aren't coming through to the phone's mail app but I can see them in webmail.
What port do I use for outgoing mail? 25 doesn't work.
Can I forward everything from my Tidewell address to my Gmail automatically?
After the webmail change, my old inbox folders have disappeared from Outlook.
Mailbox is full and I can't work out how to clear it from the phone.
Which server name do I put in the Mail app on my Mac? It won't verify the account.
- email not syncing on phone | smtp settings?
+ The address is {email}. | It worked fine until last week. | I've double checked the password by logging into webmail.
> my email also isn't working on my phone | I can't get my tidewell email on the laptop

## tv_streaming -> slow_internet cancel_subscription
: Problems with the TV box, TV app, channels or streaming services in a TV bundle.
The TV box keeps buffering during live football, broadband is fine on everything else.
Lost all the sports channels since yesterday.
The streaming app on my smart TV says my subscription isn't active, but I pay for it every month.
Recordings have disappeared from the box.
tv box stuck on 'updating' screen for hours
How do I get the Netflix that's included in my bundle? I can't see how to link it.
Subtitles won't turn off no matter what I do.
Picture freezes every few minutes on every channel, sound carries on.
Remote control stopped working with the box, new batteries didn't help.
Can I watch the TV package on my laptop when I'm away from home?
The box says 'no signal from aerial' on the Freeview channels.
Catch-up shows error code {errcode} whatever I try to watch.
The kids' cartoons channel has vanished from the guide.
- tv box frozen | tv has no channels
+ The box is the {tvbox}. | I've unplugged it and plugged it back in. | We pay for the full package so this isn't on.
> the tv box keeps freezing too | some channels have disappeared from the box

## coverage_question -> no_connection moving_address
: Asks about mobile signal or broadband availability at a location.
What's the signal like in {city}? Thinking of switching.
Is full fibre available at postcode {postcode}?
Do you have 5G in my area yet?
Poor signal indoors at my house, is there a mast planned nearby?
We're buying a house in a village near {city}. Will we get decent broadband there?
does your network work in the scottish highlands, going camping
Your checker says I can get 500Mb but my neighbour was told fibre isn't available on our street. Who's right?
Is there signal on the train line between {city} and {city2}?
Before I sign up, can you tell me if indoor reception is good at {address}?
Why doesn't your map show my road at all?
Will wifi calling help with the dead spots at home?
My office is in a basement. Is your signal strong enough in the city centre for that?
Thinking of joining. Will my phone actually work at my caravan on the coast near {city}?
- 5G in {city}? | fibre available at {postcode}?
+ I'm with another network at the moment and the signal is awful. | I work from home so I need it to be reliable.
> is there 5G where my parents live? | the signal at my mum's house is terrible

## unlock_phone -> lost_or_stolen_phone roaming_charges
: Requests a network unlock code or help unlocking a handset to use another network's SIM.
Can you unlock my phone so I can use another network's SIM?
I'm going abroad and want to use a local SIM. Is my phone locked to Tidewell?
Put a friend's SIM in and it says 'SIM network unlock PIN'. Where do I get that?
unlock code pls, IMEI {imei}
I've paid off my phone, now I'd like it freed up before I sell it.
The code you sent says 'incorrect' when the phone asks for it with the other network's SIM in.
Bought a second-hand phone that was originally from Tidewell. Can you release it even though I'm not a customer?
How long does it take to network unlock an iPhone? It's been 5 days since I asked.
Is there a charge for unlocking a handset? My contract finished last month.
Phone says 'SIM not supported' with my new provider's card. I think you need to release it.
My work is giving me a different network's SIM, I need my personal phone opened up so it takes any card.
Phone still locked after you said it was done.
Selling my old {device} and the buyer wants proof it works on any network.
- unlock code needed | is my phone locked
+ The IMEI is {imei}. | It's a {device}.
> I might also need the phone unlocked | I want to use a foreign SIM in this phone next month

## late_payment_fee -> billing_dispute update_payment_method
: A fee charged for a late, missed or failed payment.
Why have I been charged a {fee} late payment fee? I paid on the day it was due.
I missed one payment because I was in hospital. Can the late fee be removed?
The direct debit failed because of your system, not my bank, and now I have a penalty charge.
late fee on my bill, i paid 1 day late, is that really necessary
I got a letter saying I'll be charged for a missed payment but I've never missed one.
Payment was 2 days late because the bank holiday delayed it. Please waive the fee.
There's an 'admin charge - failed payment' of {fee} on my account. My card was valid.
Can you explain how the late payment charge is calculated? It's more than the bill itself.
I've been hit with a late charge every month since you changed my payment date. It's your fault not mine.
I'm struggling financially this month, if I pay a week late will there be a fee?
You've charged me a missed-payment fee AND a reconnection fee. That's {fee} each on top of the bill.
First time I've ever been late in 8 years as a customer, surely you can let this one go?
Paid on the 16th instead of the 14th and got a {fee} penalty. Seriously?
- why a late fee?? | remove late charge please
+ I have proof from my bank that the money was there. | I've paid the bill in full now.
> there's a late payment charge I don't think I deserve | I was charged for paying a couple of days late

## promo_code -> billing_dispute refund_request
: A discount or promo code didn't apply, was rejected, or its terms are unclear.
The code {code} says invalid at checkout.
I used a discount code when I ordered but I was charged the full price.
Where do I enter a promo code in the app? I can't see a box for it.
my friend referred me, where's my referral credit?
The student discount isn't showing on my bill.
Your email says 20% off with {code} until Sunday but the site says expired. It's Friday.
Can I use two codes on one order?
I got a voucher in the post for a free month of broadband, how do I redeem it?
The Black Friday offer price wasn't applied to my order {order}.
NHS discount code not working
I forgot to put the code in before paying. Can you add it now?
The money off showed in the basket but disappeared on the payment page.
Advert said half price for six months. My first bill is full whack.
- code not working | discount not applied
+ The code is {code}. | I have the email with the offer. | I wouldn't have ordered without the discount.
> the discount code I used never got applied | my referral credit never showed up

## privacy_data_request -> account_locked complaint_staff
: Requests about personal data: access, deletion, correction, marketing consent or data sharing.
I'd like a copy of all the personal data you hold about me (subject access request).
Please delete my data. I closed my account two years ago and you're still emailing me.
Stop selling my number to marketing companies. I'm getting calls from people who know I'm your customer.
How do I opt out of marketing texts?
Who did you share my details with? I've received a letter from a debt collector I've never heard of.
remove me from your mailing list
Your records have my date of birth wrong. Please correct it.
I think there's been a breach. Someone called me quoting my account number and my last bill amount.
Do you record calls and how long do you keep them? I want the recording of my call on {date}.
I'd like to withdraw consent for you to use my browsing history for personalised adverts.
Can you tell me what information the app collects about my location?
My ex is still listed as an authorised person on my account. Please remove her and confirm what she can see.
Under GDPR, please erase everything you have on me.
- delete my data | unsubscribe me from everything
+ I'm making this request under GDPR. | Please respond within the statutory month.
+ Use this email address for your reply.
> please stop sending me marketing | I'd like to know what data you keep about me

## accessibility_support -> complaint_staff technician_appointment
: Support for a disability or additional needs: accessible formats, relay services, carers, priority help.
I'm partially sighted. Can I get my bills in large print?
Is there a way to contact you by text relay? I'm deaf.
My mum has dementia and I need to be able to talk to you on her behalf.
The website doesn't work with my screen reader, the payment buttons aren't labelled.
do you do braille bills
I rely on my landline for my care alarm. Can I be registered as a priority customer during faults?
Can the engineer ring instead of knocking? I'm hard of hearing and won't hear the door.
I have anxiety and find phone calls very difficult. Can everything be done by email?
Is there a phone with big buttons you'd recommend for my dad who has arthritis?
Please note on my account that I use a wheelchair and need a ground floor appointment at the shop.
Your verification calls are automated voice only, I can't use them because I'm deaf.
Can my son be added as someone who can speak for me? I had a stroke and my speech is affected.
My eyesight is going and the letters you send are in tiny grey print.
- large print bills please | my carer needs access to my account
+ I can send a letter from my GP if that helps. | This has been really stressful. | I'd appreciate a reply in writing.
> can you send my letters in large print? | my dad, who is deaf, struggles to use your phone line

## business_account -> invoice_copy upgrade_plan
: Business customers: company accounts, multiple lines, business invoicing and VAT, business quotes.
We're a small company with 12 staff. What business mobile deals do you offer?
How do I add three more lines to our business account?
Our company name has changed, can the account and invoices be updated to the new one?
need vat number on all invoices for the company account
Can I move my sole trader line from a personal account to a business one?
Who is our account manager? We have 40 lines and nobody ever answers the business number.
We need a static IP for the office broadband.
Can we get one bill for all our office sites instead of five separate ones?
I'm the new office manager and need to be added as an administrator on the account.
Do you offer broadband with a 4-hour fix guarantee for offices?
Our accountant wants the company registration number shown on invoices.
Setting up a new restaurant and need phone, broadband for the card machine and wifi for customers.
Looking for a quote for 25 handsets for our sales team.
- business quote please | add lines to company account
+ Company registration {crn}. | Our account number is {acct}. | I'm the account administrator. | Happy to discuss by phone.
> we might also need some lines for the business | we need a VAT invoice for the company too

## voicemail -> app_bug no_connection
: Setting up, accessing or fixing voicemail.
How do I set up voicemail on my new phone?
I forgot my voicemail PIN.
People say they can't leave me messages, it just rings out.
turn off voicemail please, i never check it
I get a text saying I have a new message but when I dial in there's nothing there.
Voicemails are arriving days late.
Can I change the greeting to my own message instead of the robot voice?
My calls go to the answering service even though I have full signal and the phone isn't on silent.
Visual voicemail stopped working after the update on my {device}.
How do I save a recorded message permanently? It's from my late husband.
The recorded greeting callers hear is in Spanish for some reason.
Calls go straight to the answerphone after 2 rings, can I make it ring longer?
Callers are told my mailbox is full, but I can't work out how to delete the old recordings.
- voicemail not working | reset voicemail pin
+ My number is {phone}. | I'm missing calls from the doctor's surgery because of this.
> my voicemail has stopped working | I can't get into my voicemail

## international_calls -> roaming_charges billing_dispute
: Calling or texting foreign numbers from home: rates, add-ons and calls that fail to connect.
How much does it cost to call {country} from my mobile?
Calls to my family in {country} won't connect, I just get a busy tone.
Is there an add-on for cheaper calls to {country}? I ring my mum every day.
i called poland for 10 mins and it cost {amount}??
Can I text numbers in {country}? Messages say sent but never arrive.
My plan says 'international minutes included' but I've been charged for calls to {country}.
What's the right format for dialling {country}, with the plus or with 00?
Calling other countries seems to be barred on my account. How do I turn it on?
Calls overseas drop after exactly 1 minute every time.
Are calls to {country} landlines cheaper than mobiles?
I need to call a hotline in {country} for my visa, will that be expensive?
My kids ring their grandparents in {country} a lot, which bundle is best?
Every time I ring my brother in {country} I hear 'your call cannot be connected'.
- cost to call {country}? | cant call abroad
+ I'm calling from home, not while travelling. | I'm on the {plan} plan.
> how much do calls to {country} cost from home? | calls to my family in {country} keep failing

## esim_transfer -> sim_activation porting_number
: Setting up, moving or recovering an eSIM: QR codes, eSIM profiles, switching to or from eSIM.
I've got a new iPhone, how do I move my eSIM over from the old one?
The QR code you emailed says 'no longer valid'.
Can I switch from a physical SIM to eSIM?
deleted my esim by accident when resetting my phone, help
The transfer got stuck on 'activating' and now neither phone has service.
Need a new QR code, I'm setting up my Pixel.
Does my plan work on a smartwatch with its own number?
I want my Tidewell number on the digital SIM and my work SIM in the physical slot.
It won't download, says 'unable to complete cellular plan change'.
The app says 'Transfer eSIM' but the option is greyed out.
Swapped phones with my sister, how do we swap the eSIMs over?
Can I go back to a plastic card? My new phone doesn't support eSIM.
New phone has no SIM tray at all. How do I get my number onto it?
- new esim qr code please | move esim to new phone
+ The EID is on the screen if you need it. | I'm not near a shop.
> I'll need to move the eSIM to my new phone after this | the eSIM QR code didn't work

## parental_controls -> router_setup data_allowance
: Content filters, age restrictions, screen-time limits or spending limits for children.
How do I block adult sites on the home broadband? The kids have tablets now.
My 10 year old managed to spend {amount} on game stuff charged to the phone bill. How do I stop that happening again?
Can I set the wifi to turn off for the kids' devices at 9pm?
Your content filter is blocking my son's school website.
parental lock on the tv box, forgot the pin
How do I turn off the age restriction on my phone? I'm 34.
I want to see which websites my daughter has been visiting.
Is there a way to stop my son downloading apps without my approval on his Tidewell SIM?
Safety filters switched themselves off after the router update.
Can I pause the internet for just one device?
I'm setting up a phone for my 8 year old, what controls can I put on it?
The filter blocks YouTube entirely, I only want to block the inappropriate stuff.
My teenager has figured out how to get round the restrictions. Is there anything stronger?
- block sites for kids | kids filter too strict
+ The kids are very good at getting round things. | The router is the {router}.
> I also want to sort out some controls for the kids' devices | I need to block some sites for the kids

## feedback_compliment -> complaint_staff technician_appointment
: Positive feedback or thanks; no action needed.
Just wanted to say thank you to {staffname} in the {city} store, she was brilliant.
The engineer who came today was fantastic, polite and tidy. Please pass on my thanks.
Fair play, that was the quickest setup I've ever had.
Great service on the chat today, sorted in 5 minutes.
I was dreading calling but the lady I spoke to was so patient with me. Thank you.
after all my complaints last year, I have to say things have improved a lot. cheers
{staffname} on your phone team went above and beyond to sort my dad's account. He deserves a raise.
No problem to report, just a thumbs up for the new app design.
Internet has been rock solid since the upgrade. Happy customer.
Thanks for sorting the outage so quickly last night, much appreciated.
Your shop staff helped me transfer all my photos to the new phone without me even asking.
Just wanted to let someone know the delivery driver went out of his way to find my flat in the rain.
Ten years with you and never had a reason to complain. Keep it up.
- great service today, thanks | thank you, all sorted
+ I'll be recommending you to friends. | No need to reply.
> the person in the shop last week was lovely | the engineer last time was great
"""


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    neighbours: tuple[str, ...]
    cores: tuple[str, ...]
    details: tuple[str, ...]
    asides: tuple[str, ...]


def parse_fragments(text: str) -> dict[str, Category]:
    """Parse the FRAGMENTS block into Category objects, in file order."""
    categories: dict[str, Category] = {}
    for block in text.strip().split("\n\n"):
        header, *lines = block.strip().splitlines()
        name, _, neighbours = header.removeprefix("## ").partition(" -> ")
        by_kind: dict[str, list[str]] = {":": [], "+": [], ">": [], "": []}
        for line in lines:
            kind = line[0] if line[:2] in (": ", "+ ", "> ", "- ") else ""
            by_kind[kind.strip("-")] += line[2:].split(" | ") if kind else [line]
        categories[name] = Category(name, by_kind[":"][0], tuple(neighbours.split()), tuple(by_kind[""]),
                                    tuple(by_kind["+"]), tuple(by_kind[">"]))
    for c in categories.values():
        assert set(c.neighbours) <= categories.keys() and c.name not in c.neighbours, c.name
        assert len(c.cores) >= 12 and c.details and c.asides, c.name
    return categories


CATEGORIES = parse_fragments(FRAGMENTS)

# Shared fragments: every category draws from these, so they carry no label signal.
OPENERS = [
    "Hi,", "Hello,", "hello team", "Hi there,", "Good morning,", "Good afternoon,", "Dear Tidewell,",
    "To whom it may concern,", "hey", "Hiya", "Hi team,", "Dear Sir/Madam,", "Hello?", "Evening,",
    "Hi, hope you're well.", "Hello, I hope someone can help.", "Right,",
]
CONTEXT = [
    "I've been with you for {years} years.", "Account number {acct}.", "I'm on the {plan} plan.",
    "Sorry if this is the wrong place to ask.", "I tried the live chat first but gave up waiting.",
    "Writing from my work email.", "My name is {name} {surname} and the account is in my name.",
    "This is on behalf of my mother, she's the account holder.", "Long story short:", "Bit of a weird one.",
    "Quick question.", "Not sure who to ask about this.",
]
IMPATIENT_CONTEXT = [
    "Second time writing about this.", "I've already spoken to someone about this and nothing happened.",
    "I rang yesterday and was on hold for over an hour.",
]
CLOSERS = [
    "Thanks.", "Cheers", "Thank you in advance!", "Many thanks", "Any help appreciated :)", "Please advise.",
    "Thanks for your help.", "Hope that makes sense.", "Let me know what you need from me.", "Ta", "Thx",
    "Look forward to hearing from you.", "Email is best, I can't take calls at work.",
    "Can someone ring me on {phone}?",
]
ANGRY_CLOSERS = [
    "Please get back to me asap.", "I expect a reply today.", "Sort it out please.", "Not happy.",
    "This is ridiculous.", "I've been a loyal customer and this isn't good enough.", "Third time I've asked.",
    "If this isn't fixed I'm leaving.",
]
THANKFUL_CLOSERS = ["Thanks again.", "Cheers", "Many thanks", "Ta", "Keep up the good work.", ":)"]
SIGNATURES = [
    "Thanks, {name}", "-- {name}", "Regards,\n{name} {surname}", "Sent from my iPhone", "-- sent from my phone",
    "{name}", "Kind regards, {name} {surname}", "{name} ({acct})", "Best,\n{name}", "Sent from Outlook for Android",
]
# How a secondary issue is introduced; "{a}" is the aside (without final punctuation).
ASIDE_WRAPPERS = [
    "Also, {a}", "Separate thing, but {a}", "Not the main issue, but {a}", "On top of that, {a}", "P.S. {a}",
    "Oh and {a}", "Less urgent: {a}", "Another thing: {a}", "Different subject, {a}",
]

FIRST_NAMES = [
    "Maria", "Tom", "Priya", "Kwame", "Siobhan", "Ahmed", "Li", "Jo", "Gareth", "Fatima", "Dave", "Agnieszka",
    "Tomasz", "Chloe", "Ravi", "Hannah", "Mo", "Ellie", "Pat", "Sandra", "Oluwaseun", "Bogdan", "Niamh",
    "Yusuf", "Rhys", "Aisha", "Graham", "Zofia", "Callum", "Bernadette",
]
SURNAMES = [
    "Smith", "Okafor", "Patel", "Kowalski", "Jones", "MacLeod", "Hussain", "Evans", "Nguyen", "O'Brien",
    "Williams", "Ahmed", "Murphy", "Taylor", "Novak", "Campbell", "Begum", "Price",
]
CITIES = [
    "Leeds", "Bristol", "Cardiff", "Glasgow", "Norwich", "Leicester", "Plymouth", "Sheffield", "York",
    "Swansea", "Derby", "Bournemouth", "Aberdeen", "Hull", "Exeter", "Preston",
]
COUNTRIES = [
    "Spain", "France", "Turkey", "the US", "Canada", "Switzerland", "Morocco", "the UAE", "Poland", "Nigeria",
    "India", "Pakistan", "Jamaica", "Australia", "Portugal", "Greece", "Norway", "Ghana", "the Philippines",
]
DEVICES = [
    "iPhone 13", "iPhone 15", "Galaxy S23", "Galaxy A54", "Pixel 7a", "Pixel 8", "Moto G84", "Redmi Note 12",
    "iPhone SE", "Galaxy Z Flip5", "Nokia G42",
]
PLANS = ["Essentials 10GB", "Unlimited Plus", "SIM Only 30GB", "Fibre 150", "Fibre 500", "Family Share", "Flex 5GB"]
ROUTERS = ["Tidewell Hub 3", "Hub 4", "Smart Hub X2", "Hub 5 Pro", "TW-R200"]
TV_BOXES = ["TideTV Box", "TideTV Mini", "4K box", "TideTV Recorder"]
STREETS = ["Mill Lane", "Station Road", "Church Street", "Victoria Avenue", "Park Close", "Albert Terrace"]
PROMO_WORDS = ["SPRING", "WELCOME", "SAVE", "FIBRE", "BF", "SUMMER", "STUDENT", "HELLO"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


def _amount(rng: random.Random) -> str:
    pounds = rng.choice([rng.randint(3, 60), rng.randint(20, 120), rng.randint(100, 480)])
    return f"£{pounds}" + rng.choice(["", ".00", ".99", ".50", f".{rng.randint(10, 99)}"])


def _date(rng: random.Random, future: bool = False) -> str:
    day, month = rng.randint(1, 28), rng.choice(MONTHS)
    suffix = "th" if day in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    relative = f"{'next' if future else 'last'} {rng.choice(WEEKDAYS)}"
    return rng.choice([f"{day} {month}", f"{month} {day}{suffix}", f"the {day}{suffix}",
                       f"{day:02d}/{rng.randint(1, 12):02d}", rng.choice(WEEKDAYS), relative,
                       f"{rng.choice(WEEKDAYS)} {day} {month[:3]}"])


def _time(rng: random.Random) -> str:
    hour = rng.randint(7, 18)
    return rng.choice([f"{hour % 12 or 12}{'am' if hour < 12 else 'pm'}", f"{hour}:00",
                       f"{hour}:{rng.choice(['15', '30', '45'])}"])


def _digits(k: int) -> Callable[[random.Random], str]:
    return lambda rng: "".join(rng.choices(string.digits, k=k))


def _order(rng: random.Random) -> str:
    digits = _digits(rng.choice([7, 8]))(rng)
    return rng.choice([f"TW-{digits}", f"#{digits}", f"TW{digits}", f"number {digits}"])


def _postcode(rng: random.Random) -> str:
    L = string.ascii_uppercase
    return f"{rng.choice(L)}{rng.choice(L)}{rng.randint(1, 29)} {rng.randint(1, 9)}{rng.choice(L)}{rng.choice(L)}"


def _email(rng: random.Random) -> str:
    user = f"{rng.choice(FIRST_NAMES)}.{rng.choice(SURNAMES)}".lower().replace("'", "")
    return f"{user}{rng.randint(1, 99)}@{rng.choice(['gmail.com', 'tidewell.net', 'outlook.com', 'yahoo.co.uk'])}"


SLOT_MAKERS: dict[str, Callable[[random.Random], str]] = {
    "amount": _amount, "amount2": _amount, "date": _date, "date2": _date, "time": _time, "time2": _time,
    "future": lambda r: _date(r, future=True), "future2": lambda r: _date(r, future=True),
    "price": lambda r: f"£{r.randint(10, 79)}" + r.choice(["", ".99", ".50", ".00"]),
    "fee": lambda r: r.choice(["£5", "£7.50", "£8", "£10", "£12", "£12.50", "£15"]),
    "order": _order, "postcode": _postcode, "email": _email,
    "phone": lambda r: f"07{r.randint(100, 999)} {r.randint(100000, 999999)}",
    "month": lambda r: r.choice(MONTHS), "days": lambda r: str(r.randint(3, 21)),
    "hours": lambda r: str(r.randint(3, 48)), "months": lambda r: str(r.randint(2, 20)),
    "years": lambda r: str(r.randint(2, 19)), "n": lambda r: str(r.randint(2, 9)),
    "device": lambda r: r.choice(DEVICES), "plan": lambda r: r.choice(PLANS), "router": lambda r: r.choice(ROUTERS),
    "tvbox": lambda r: r.choice(TV_BOXES), "city": lambda r: r.choice(CITIES), "city2": lambda r: r.choice(CITIES),
    "country": lambda r: r.choice(COUNTRIES), "name": lambda r: r.choice(FIRST_NAMES),
    "surname": lambda r: r.choice(SURNAMES), "staffname": lambda r: r.choice(FIRST_NAMES), "last4": _digits(4),
    "acct": lambda r: str(r.randint(1, 9)) + _digits(8)(r), "imei": _digits(15), "crn": _digits(8),
    "ref": lambda r: r.choice(["REF", "CAS", "INC", ""]) + _digits(r.randint(6, 9))(r),
    "tracking": lambda r: r.choice(["JD", "H", "TT"]) + _digits(12)(r), "pac": lambda r: "PAC " + _digits(6)(r),
    "sortcode": lambda r: f"{r.randint(10, 99)}-{r.randint(10, 99)}-{r.randint(10, 99)}",
    "dob": lambda r: f"{r.randint(1, 28):02d}/{r.randint(1, 12):02d}/{r.randint(1948, 2004)}",
    "paid": lambda r: r.choice(["150", "300", "500", "900", "74", "67"]),
    "speed": lambda r: str(r.choice([1, 2, 3, 5, 8, 12, 0.8])),
    "errcode": lambda r: r.choice(["E", "ERR-", "AC", "TV"]) + str(r.randint(100, 9999)),
    "appver": lambda r: f"{r.randint(4, 7)}.{r.randint(0, 19)}.{r.randint(0, 9)}",
    "code": lambda r: f"{r.choice(PROMO_WORDS)}{r.choice([10, 15, 20, 25, 30, 50])}",
    "address": lambda r: f"{r.randint(1, 140)} {r.choice(STREETS)}, {r.choice(CITIES)}",
}


SLOT_RE = re.compile(r"\{(\w+)\}")


class Slots(dict):
    """Fills {slot} placeholders lazily, so a slot repeated within one ticket keeps its value."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        self[key] = SLOT_MAKERS[key](self.rng)
        return self[key]


# --------------------------------------------------------------------------
# Noise. Real inboxes are sloppy; applying it to a fraction of tickets keeps
# exact surface form from being a reliable signal.
# --------------------------------------------------------------------------
SHORTHAND = [(r"\byou\b", "u"), (r"\bplease\b", "pls"), (r"\bthanks\b", "thx"), (r"\bare\b", "r"),
             (r"\bbecause\b", "cos"), (r"\bI'm\b", "im"), (r"\bthrough\b", "thru")]


def add_typos(text: str, rng: random.Random, count: int) -> str:
    """Swap, drop or double one letter in `count` random alphabetic words of 5+ letters."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(candidates, min(count, len(candidates))):
        w, j = words[i], rng.randint(1, len(words[i]) - 2)
        op = rng.choice(("swap", "drop", "double"))
        words[i] = (w[:j] + w[j + 1] + w[j] + w[j + 2:] if op == "swap"
                    else w[:j] + w[j + 1:] if op == "drop" else w[:j] + w[j] + w[j:])
    return " ".join(words)


def roughen(text: str, rng: random.Random, style: str) -> str:
    """Casual-writing noise; terse tickets get it more often, as in real inboxes."""
    sloppy = 0.5 if style == "terse" else 0.18
    if rng.random() < sloppy:
        text = text.lower()
    if rng.random() < sloppy:
        text = text.replace("'", "")
    if rng.random() < 0.22:
        text = add_typos(text, rng, 1 if len(text) < 80 else rng.choice((1, 1, 2)))
    if rng.random() < 0.1:
        for pattern, short in rng.sample(SHORTHAND, 3):
            text = re.sub(pattern, short, text, flags=re.IGNORECASE)
    if rng.random() < sloppy and text.endswith("."):
        text = text[:-1]
    return text


def make_aside(label: str, rng: random.Random) -> tuple[str, str]:
    """A secondary issue from another category, half the time a confusable neighbour."""
    if rng.random() < 0.5:
        other = rng.choice(CATEGORIES[label].neighbours)
    else:
        other = rng.choice([c for c in CATEGORIES if c != label])
    aside = rng.choice(ASIDE_WRAPPERS).format(a=rng.choice(CATEGORIES[other].asides))
    return other, aside if aside.endswith("?") else aside + "."


def join_sentences(parts: list[str]) -> str:
    """Join with spaces, ending unpunctuated parts (often terse cores) with a full stop when more follows."""
    return " ".join([p + "." if p[-1].isalnum() or p[-1] == "}" else p for p in parts[:-1]] + parts[-1:])


def compose_ticket(label: str, core: str, rng: random.Random) -> tuple[str, str | None]:
    """Build one ticket around `core`. Returns (text, category of its aside or None)."""
    category = CATEGORIES[label]
    # Plain questions rarely come with "this is ridiculous", so only non-question
    # cores of non-calm categories may get impatient context or angry closers.
    calm = label in CALM or core.endswith("?")
    style = rng.choices(("terse", "normal", "rambling"), weights=(22, 53, 25))[0]
    if rng.random() < 0.05:  # emphatic punctuation on the main issue
        core = core.rstrip(".!?") + rng.choice(["!!", "??", "!!!", " ?"])
    body = [core]
    aside_label: str | None = None
    closer = False
    if style != "terse":
        n_details = int(rng.random() < 0.35) if style == "normal" else rng.choice((1, 1, 2))
        # Skip details that would repeat a value the core already gives (e.g. a second IMEI).
        details = [d for d in category.details if not set(SLOT_RE.findall(d)) & set(SLOT_RE.findall(core))]
        body += rng.sample(details, min(n_details, len(details)))
        if style == "rambling" and label != "feedback_compliment" and rng.random() < 0.6:
            body.insert(0, rng.choice(CONTEXT + ([] if calm else IMPATIENT_CONTEXT)))
        if label != "feedback_compliment" and rng.random() < (0.2 if style == "normal" else 0.5):
            aside_label, aside = make_aside(label, rng)
            body.insert(rng.randint(body.index(core) + 1, len(body)), aside)
        closer = rng.random() < (0.35 if style == "normal" else 0.7)
        if closer:
            closers = CLOSERS if calm or rng.random() < 0.6 else ANGRY_CLOSERS
            body.append(rng.choice(THANKFUL_CLOSERS if label == "feedback_compliment" else closers))
    text = join_sentences(body)
    if style != "terse" and rng.random() < 0.5 and not re.match(r"(hi|hello)\b", core, re.IGNORECASE):
        text = rng.choice(OPENERS) + rng.choice((" ", "\n\n", "\n")) + text  # (no double greeting)
    slots = Slots(rng)
    text = roughen(text.format_map(slots), rng, style)
    if style != "terse" and rng.random() < 0.3:  # after roughen: signatures are typed once, or automatic
        separator = rng.choice(("\n", "\n\n") if closer else ("\n", "\n\n", " "))
        text += separator + rng.choice(SIGNATURES).format_map(slots)
    return text, aside_label


def normalise(text: str, digits: bool = True) -> str:
    """Duplicate-detection key: lowercase, runs of punctuation/whitespace collapsed to one space.
    With digits=False, numbers are dropped too, so tickets that differ only in an
    order number or amount also count as duplicates (the generator avoids those)."""
    return re.sub(r"[\W_]+" if digits else r"[\W_\d]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class Ticket:
    text: str
    label: str
    aside_label: str | None  # category of the secondary issue, if any
    heldout: bool = False  # its core phrasing appears in no other split


def generate(rng: random.Random) -> dict[str, list[Ticket]]:
    """Generate every category's tickets and split them 60/20/20, stratified by category."""
    seen: set[str] = set()
    splits: dict[str, list[Ticket]] = {"train": [], "validation": [], "test": []}

    def unique_ticket(label: str, core: str, heldout: bool = False) -> Ticket:
        while True:  # re-roll on a duplicate, e.g. a short terse core drawn twice
            text, aside = compose_ticket(label, core, rng)
            if normalise(text, digits=False) not in seen:
                seen.add(normalise(text, digits=False))
                return Ticket(text, label, aside, heldout)

    for label, category in CATEGORIES.items():
        n = rng.randint(*TICKETS_PER_CATEGORY)
        n_val, n_test = round(n * SPLIT_FRACTIONS[1]), round(n * SPLIT_FRACTIONS[2])
        cores = list(category.cores)
        rng.shuffle(cores)
        test_core, val_core, shared = cores[0], cores[1], cores[2:]
        test = [unique_ticket(label, test_core, heldout=True) for _ in range(HELDOUT_TICKETS)]
        val = [unique_ticket(label, val_core, heldout=True) for _ in range(HELDOUT_TICKETS)]
        # Cycle through the shared cores so each phrasing is used about equally often.
        rest = [unique_ticket(label, shared[i % len(shared)]) for i in range(n - 2 * HELDOUT_TICKETS)]
        rng.shuffle(rest)
        k_test, k_val = n_test - len(test), n_val - len(val)
        splits["test"] += test + rest[:k_test]
        splits["validation"] += val + rest[k_test:k_test + k_val]
        splits["train"] += rest[k_test + k_val:]
    for tickets in splits.values():
        rng.shuffle(tickets)
    return splits


def make_preferences(train: list[Ticket], rng: random.Random) -> list[dict[str, str]]:
    """Preference pairs from train only. The rejected answer is the category of the
    ticket's secondary issue when it has one (the most tempting wrong answer),
    otherwise one of the category's confusable neighbours."""
    pairs: list[dict[str, str]] = []
    for label, category in CATEGORIES.items():
        own = [t for t in train if t.label == label]
        for t in rng.sample(own, PREFERENCES_PER_CATEGORY):
            rejected = t.aside_label or rng.choice(category.neighbours)
            pairs.append({"prompt": t.text, "chosen": label, "rejected": rejected})
    rng.shuffle(pairs)
    return pairs


def render() -> tuple[dict[str, str], dict[str, list[Ticket]]]:
    """Every generated file's content keyed by file name, plus the tickets per split."""
    rng = random.Random(SEED)
    splits = generate(rng)
    prefs = make_preferences(splits["train"], rng)

    def jsonl(rows: list[dict]) -> str:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    def chat(t: Ticket) -> dict:
        return {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": t.text},
                             {"role": "assistant", "content": t.label}]}

    files = {f"{split}.jsonl": jsonl([chat(t) for t in tickets]) for split, tickets in splits.items()}
    files["preferences.jsonl"] = jsonl(prefs)
    descriptions = {name: c.description for name, c in CATEGORIES.items()}
    files["categories.json"] = json.dumps(descriptions, indent=2, ensure_ascii=False) + "\n"
    return files, splits


def write(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, content in render()[0].items():
        (out / name).write_text(content, encoding="utf-8")
        print(f"wrote {out / name} ({content.count(chr(10))} lines)")


def load_split(path: Path) -> list[tuple[str, str]]:
    """(ticket text, category) pairs from a chat-format JSONL file, checking its shape."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        messages = json.loads(line)["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant"], path
        assert messages[0]["content"] == SYSTEM_PROMPT, path
        rows.append((messages[1]["content"], messages[2]["content"]))
    return rows


def check(out: Path) -> int:
    """Validate the files on disk and print the TF-IDF + logistic-regression baseline."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline, make_union

    problems: list[str] = []
    files, tickets = render()
    stale = [n for n, c in files.items() if not (out / n).exists() or (out / n).read_text(encoding="utf-8") != c]
    if stale:
        problems.append(f"files differ from the generator's output: {stale} (rerun without --check)")
    categories = json.loads((out / "categories.json").read_text(encoding="utf-8"))
    if len(categories) != 40:
        problems.append(f"expected 40 categories, found {len(categories)}")
    data = {split: load_split(out / f"{split}.jsonl") for split in ("train", "validation", "test")}
    seen: dict[str, str] = {}
    totals: Counter[str] = Counter()
    for split, rows in data.items():
        counts = Counter(label for _, label in rows)
        totals.update(counts)
        print(f"{split:<11}{len(rows):>5} tickets, {len(counts)} categories, "
              f"{min(counts.values())}-{max(counts.values())} per category")
        for text, label in rows:
            if label not in categories:
                problems.append(f"unknown category {label!r} in {split}")
            for key in {normalise(text), normalise(text, digits=False)}:
                if key in seen:
                    problems.append(f"duplicate in {split} and {seen[key]}: {text[:60]!r}")
                seen[key] = split
    if min(totals.values()) < 30:
        problems.append(f"a category has fewer than 30 tickets: {totals.most_common()[-1]}")
    train_labels = {normalise(text): label for text, label in data["train"]}
    prefs = [json.loads(line) for line in (out / "preferences.jsonl").read_text(encoding="utf-8").splitlines()]
    for p in prefs:
        if (train_labels.get(normalise(p["prompt"])) != p["chosen"] or p["rejected"] == p["chosen"]
                or p["rejected"] not in categories):
            problems.append(f"bad preference pair: {p['prompt'][:60]!r}")
    print(f"{'total':<11}{sum(totals.values()):>5} tickets; {len(prefs)} preference pairs")

    model = make_pipeline(
        make_union(TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        LogisticRegression(C=10, max_iter=2000),
    )
    model.fit([text for text, _ in data["train"]], [label for _, label in data["train"]])
    for split in ("validation", "test"):
        predicted = model.predict([text for text, _ in data[split]])
        accuracy = accuracy_score([label for _, label in data[split]], predicted)
        print(f"TF-IDF + LogisticRegression accuracy on {split}: {accuracy:.4f}")
    # Test tickets whose core phrasing never occurs in train vs. those whose does.
    heldout = {t.text for t in tickets["test"] if t.heldout}
    for name, wanted in (("unseen", True), ("seen", False)):
        pairs = [(label, p) for (text, label), p in zip(data["test"], predicted) if (text in heldout) == wanted]
        if pairs:
            print(f"  test tickets with a phrasing {name} in train: {sum(l == p for l, p in pairs) / len(pairs):.4f}"
                  f" ({len(pairs)} tickets)")
    confusions = Counter((label, p) for (_, label), p in zip(data["test"], predicted) if label != p)
    print("most frequent test confusions (true -> predicted):")
    for (true, wrong), k in confusions.most_common(10):
        print(f"  {true} -> {wrong}: {k}")
    for problem in problems[:20]:
        print("PROBLEM:", problem)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate or check the demo support-ticket dataset.")
    parser.add_argument("--check", action="store_true", help="validate the files and print the baseline accuracy")
    parser.add_argument("--write", action="store_true", help="write the dataset files (the default action)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: datasets/tickets)")
    args = parser.parse_args(argv)
    if args.write or not args.check:
        write(args.out)
    return check(args.out) if args.check else 0


if __name__ == "__main__":
    sys.exit(main())
